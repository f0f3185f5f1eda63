"""The `callpulse` command: run the embedded floor, the distributed services, keys and tools."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from services.standalone.datadir import DATA_DIR_ENV, DEFAULT_DATA_DIR, SECRET_ENV

app = typer.Typer(help="callpulse — real-time KPIs for telesales floors.", no_args_is_help=True)


DataDir = Annotated[
    str,
    typer.Option(
        envvar=DATA_DIR_ENV,
        help="The embedded mode's folder: event log, SQLite database, webhook secret, lock.",
    ),
]


@app.command()
def run(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the one embedded server.")] = 8000,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    demo: Annotated[bool, typer.Option(help="Also simulate a floor of ~50 reps.")] = False,
    demo_minutes: Annotated[
        float | None,
        typer.Option(help="Stop the demo floor after this long and write its ground truth."),
    ] = None,
) -> None:
    """Embedded mode: ingest, aggregator and API in one process, SQLite, no Kafka.

    Always embedded: CALLPULSE_KAFKA_BOOTSTRAP is ignored here. CALLPULSE_DATABASE_URL, when
    set, replaces the SQLite database in the data folder.
    """
    from services.standalone.main import serve

    serve(host=host, port=port, data_dir=data_dir, demo=demo, demo_minutes=demo_minutes)


@app.command()
def ingest(
    host: str = "127.0.0.1",
    port: int = 8001,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Distributed mode: the ingest service (webhooks in, Kafka out)."""
    import uvicorn

    require_topics("ingest")

    uvicorn.run(
        "services.ingest.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@app.command()
def api(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Distributed mode: the API service (read model, REST, SSE, metrics, history)."""
    import uvicorn

    require_topics("api")

    uvicorn.run(
        "services.api.app:app_from_env", factory=True, host=host, port=port, log_level="warning"
    )


@app.command()
def aggregator(loglevel: str = "warning") -> None:
    """Distributed mode: one Faust aggregator worker (run several for more partitions)."""
    from services.aggregator.app import run_worker
    from services.aggregator.config import AggregatorSettings
    from services.kit.settings import load_or_exit

    run_worker(load_or_exit(AggregatorSettings, "aggregator"), loglevel=loglevel)


class EventType(StrEnum):
    """The event types `send` can build."""

    started = "call.started"
    answered = "call.answered"
    ended = "call.ended"
    outcome = "call.outcome"
    survey = "survey.completed"


@app.command()
def send(
    url: Annotated[str, typer.Option(help="Base URL of ingest (or the embedded server).")] = (
        "http://127.0.0.1:8000"
    ),
    rep: Annotated[str, typer.Option(help="rep_id of the event.")] = "alice",
    type_: Annotated[EventType, typer.Option("--type", help="Event type.")] = EventType.started,
    call_id: Annotated[str | None, typer.Option(help="Call id (default: a new one).")] = None,
    team: Annotated[str | None, typer.Option(help="team_id of the event.")] = None,
    direction: Annotated[str, typer.Option(help="outbound or inbound.")] = "outbound",
    end_status: Annotated[str, typer.Option(help="call.ended: how it ended.")] = "completed",
    talk_seconds: Annotated[
        float | None, typer.Option(help="call.ended: talk time (seconds).")
    ] = None,
    outcome: Annotated[str, typer.Option(help="call.outcome: sale, callback, ...")] = "sale",
    amount: Annotated[
        str | None, typer.Option(help="call.outcome: the sale's amount, e.g. 120.50.")
    ] = None,
    currency: Annotated[str | None, typer.Option(help="call.outcome: ISO currency.")] = None,
    csat: Annotated[int, typer.Option(help="survey.completed: the score, 1 to 5.")] = 5,
    secret: Annotated[
        str | None,
        typer.Option(
            envvar=SECRET_ENV, help="whsec_ secret [default: the embedded one in --data-dir]."
        ),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Send one signed test event (secret: CALLPULSE_WEBHOOK_SECRET or the embedded one)."""
    import json
    import uuid
    from datetime import UTC, datetime
    from pathlib import Path

    import httpx
    from pydantic import ValidationError
    from standardwebhooks import Webhook

    from schemas.events import event_to_json, parse_event
    from services.simulator.sender import SIGNING_HINT
    from services.standalone.datadir import webhook_secret

    secret = secret or webhook_secret(Path(data_dir))
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "event_id": f"cli-{uuid.uuid4().hex[:12]}",
        "type": type_.value,
        "call_id": call_id or f"cli-call-{uuid.uuid4().hex[:8]}",
        "rep_id": rep,
        "team_id": team,
        "occurred_at": now.isoformat(),
    }
    fields |= _type_fields(
        type_, direction, end_status, talk_seconds, outcome, amount, currency, csat
    )
    try:
        event = parse_event({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors()
        )
        raise typer.BadParameter(problems) from None
    body = event_to_json(event).decode()
    headers = {"content-type": "application/json"}
    if secret:
        msg_id = f"msg_{uuid.uuid4().hex}"
        headers |= {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        }
    target = f"{url.rstrip('/')}/v1/events"
    try:
        response = httpx.post(target, content=body, headers=headers, timeout=10)
    except (httpx.TransportError, httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        reason = str(exc) or type(exc).__name__
        typer.echo(
            f"callpulse: cannot reach {url} ({reason}); is callpulse running there? "
            "(`make run` starts it on http://127.0.0.1:8000)",
            err=True,
        )
        raise typer.Exit(1) from None
    typer.echo(f"{response.status_code} {response.text}")
    if response.status_code == 401:
        typer.echo(f"callpulse: the server refused the signature: {SIGNING_HINT}", err=True)
    typer.echo(json.dumps(json.loads(body)), err=True)
    raise typer.Exit(0 if response.is_success else 1)


def _type_fields(
    type_: EventType,
    direction: str,
    end_status: str,
    talk_seconds: float | None,
    outcome: str,
    amount: str | None,
    currency: str | None,
    csat: int,
) -> dict[str, object]:
    """The fields only `type_` carries."""
    if type_ is EventType.started:
        return {"direction": direction}
    if type_ is EventType.ended:
        return {"direction": direction, "end_status": end_status, "talk_seconds": talk_seconds}
    if type_ is EventType.outcome:
        return {"outcome": outcome, "amount": amount, "currency": currency}
    if type_ is EventType.survey:
        return {"csat": csat}
    return {}


from services.simulator.cli import simulate, verify  # noqa: E402 - registered below

app.command()(simulate)
app.command()(verify)

from services.keys_cli import keys_app  # noqa: E402 - registered below

app.add_typer(keys_app, name="keys")

from services.topics_cli import require_topics, topics_app  # noqa: E402 - registered below

app.add_typer(topics_app, name="topics")

if __name__ == "__main__":
    app()
