"""Checks of configured secrets shared by the services."""

from __future__ import annotations

import base64
import binascii


def check_webhook_secret(value: str) -> str:
    """`value` if it is a usable Standard Webhooks secret (`whsec_` + base64); else ValueError."""
    raw = value.removeprefix("whsec_")
    try:
        # Strict: the library itself silently skips characters outside the base64 alphabet, so
        # a placeholder like `whsec_CHANGE_ME` would otherwise pass as a (weak) real key.
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret must be `whsec_` followed by base64") from exc
    if len(key) < 16:
        raise ValueError("a webhook secret must hold at least 16 bytes")
    return value
