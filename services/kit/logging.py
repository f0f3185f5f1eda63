"""structlog set-up shared by every entry point: JSON lines in production, pretty in a terminal."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(level: str = "INFO", json: bool | None = None) -> None:
    """Configure structlog and stdlib logging once, at an entry point."""
    render_json = (not sys.stderr.isatty()) if json is None else json
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if render_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    # one line per outgoing request (demo, alert delivery) drowns the useful lines
    logging.getLogger("httpx").setLevel(logging.WARNING)


def mask_phone(number: str | None) -> str | None:
    """Keep only the last 4 digits of a phone number for logs."""
    if not number:
        return number
    return "***" + number[-4:] if len(number) > 4 else "***"
