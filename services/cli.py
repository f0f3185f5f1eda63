"""The `callpulse` command: run the embedded floor, the distributed services, keys and tools."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="callpulse — real-time KPIs for telesales floors.", no_args_is_help=True)


@app.command()
def run(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the one embedded server.")] = 8000,
    data_dir: Annotated[str, typer.Option(help="Where SQLite files live.")] = ".callpulse",
    demo: Annotated[bool, typer.Option(help="Also simulate a floor of ~50 reps.")] = False,
    demo_minutes: Annotated[
        float | None,
        typer.Option(help="Stop the demo floor after this long and write its ground truth."),
    ] = None,
) -> None:
    """Embedded mode: ingest, aggregator and API in one process, SQLite, no Kafka."""
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

    uvicorn.run(
        "services.api.app:app_from_env", factory=True, host=host, port=port, log_level="warning"
    )


@app.command()
def aggregator(loglevel: str = "warning") -> None:
    """Distributed mode: one Faust aggregator worker (run several for more partitions)."""
    from services.aggregator.app import run_worker
    from services.aggregator.config import AggregatorSettings

    run_worker(AggregatorSettings(), loglevel=loglevel)


@app.command()
def send(
    url: Annotated[str, typer.Option(help="Base URL of ingest (or the embedded server).")] = (
        "http://127.0.0.1:8000"
    ),
    rep: Annotated[str, typer.Option(help="rep_id of the event.")] = "alice",
    type_: Annotated[str, typer.Option("--type", help="Event type.")] = "call.started",
    call_id: Annotated[str | None, typer.Option(help="Call id (default: a new one).")] = None,
    data_dir: Annotated[str, typer.Option(help="Embedded data dir holding the secret.")] = (
        ".callpulse"
    ),
) -> None:
    """Send one signed test event (secret: CALLPULSE_WEBHOOK_SECRET or the embedded one)."""
    import json
    import os
    import uuid
    from datetime import UTC, datetime
    from pathlib import Path

    import httpx
    from standardwebhooks import Webhook

    secret = os.environ.get("CALLPULSE_WEBHOOK_SECRET")
    stored = Path(data_dir) / "webhook_secret"
    if not secret and stored.exists():
        secret = stored.read_text().strip()
    now = datetime.now(UTC)
    event = {
        "event_id": f"cli-{uuid.uuid4().hex[:12]}",
        "type": type_,
        "call_id": call_id or f"cli-call-{uuid.uuid4().hex[:8]}",
        "rep_id": rep,
        "occurred_at": now.isoformat(),
    }
    if type_ == "call.ended":
        event["end_status"] = "completed"
    body = json.dumps(event)
    headers = {"content-type": "application/json"}
    if secret:
        msg_id = f"msg_{uuid.uuid4().hex}"
        headers |= {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        }
    response = httpx.post(f"{url.rstrip('/')}/v1/events", content=body, headers=headers)
    typer.echo(f"{response.status_code} {response.text}")
    raise typer.Exit(0 if response.is_success else 1)


from services.simulator.cli import simulate, verify  # noqa: E402 - registered below

app.command()(simulate)
app.command()(verify)

from services.keys_cli import keys_app  # noqa: E402 - registered below

app.add_typer(keys_app, name="keys")

if __name__ == "__main__":
    app()
