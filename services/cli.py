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
) -> None:
    """Embedded mode: ingest, aggregator and API in one process, SQLite, no Kafka."""
    from services.standalone.main import serve

    serve(host=host, port=port, data_dir=data_dir, demo=demo)


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


if __name__ == "__main__":
    app()
