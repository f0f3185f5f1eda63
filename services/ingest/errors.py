"""Ingest rejections: problems that also carry a metric reason label."""

from __future__ import annotations

from typing import Any

from services.kit.problems import Problem


class Rejection(Problem):
    """A Problem with a low-cardinality `reason` for `callpulse_ingest_rejected_total`."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        reason: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(status, title, detail, headers=headers, **extra)
        self.reason = reason


def unparseable(detail: str) -> Rejection:
    """400: the body is not what its content type says."""
    return Rejection(400, "Unparseable body", detail, reason="unparseable")


def unauthorized(
    detail: str, reason: str = "bad_signature", headers: dict[str, str] | None = None
) -> Rejection:
    """401: missing, bad or stale signature or credentials."""
    return Rejection(401, "Unauthorized", detail, reason=reason, headers=headers)


def invalid(detail: str, errors: list[dict[str, str]]) -> Rejection:
    """422: the body parses but violates the event schema."""
    return Rejection(422, "Invalid events", detail, reason="invalid", errors=errors)
