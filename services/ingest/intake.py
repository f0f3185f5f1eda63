"""Request intake: the content type check and a size-bounded streaming body read."""

from __future__ import annotations

from collections.abc import Collection

from starlette.requests import ClientDisconnect, Request

from services.ingest.errors import Rejection


def media_type(request: Request, accepted: Collection[str]) -> str:
    """The request's media type if it is one of `accepted` (UTF-8 when a charset is given)."""
    header = request.headers.get("content-type", "")
    kind, _, params = header.partition(";")
    kind = kind.strip().lower()
    if kind not in accepted:
        shown = kind or "none"
        raise Rejection(
            415,
            "Unsupported media type",
            f"Content-Type {shown!r} is not accepted here; use one of: {', '.join(accepted)}.",
            reason="unsupported_media_type",
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise Rejection(
                415,
                "Unsupported media type",
                f"charset {charset!r} is not accepted; send UTF-8.",
                reason="unsupported_media_type",
            )
    return kind


def _too_large(limit: int) -> Rejection:
    return Rejection(
        413,
        "Body too large",
        f"The body exceeds the limit of {limit} bytes; split it into smaller batches.",
        reason="too_large",
    )


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body chunk by chunk, stopping as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length", "").strip()
    # isascii: str.isdigit() also accepts digits like "²" that int() refuses.
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        raise _too_large(limit)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _too_large(limit)
    except ClientDisconnect as exc:
        # Nobody reads this answer; it only keeps the disconnect out of the error logs.
        raise Rejection(
            400, "Client disconnected", "The body ended early.", reason="disconnected"
        ) from exc
    return bytes(body)
