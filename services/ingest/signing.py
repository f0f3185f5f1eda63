"""Standard Webhooks verification of `POST /v1/events`, with precise 401 details."""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from pydantic import SecretStr
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.ingest.errors import unauthorized, unparseable

log = structlog.get_logger(__name__)

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class StandardWebhookVerifier:
    """Verifies signatures with the shared secret; without one (development) lets all through."""

    def __init__(self, secret: SecretStr | None) -> None:
        self._webhook = Webhook(secret.get_secret_value()) if secret is not None else None
        if self._webhook is None:
            # Once, at start: production refuses to start without the secret (config.py).
            log.warning(
                "webhook_signatures_disabled",
                hint="set CALLPULSE_WEBHOOK_SECRET; unsigned events are accepted",
            )

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Raise a 401 Rejection unless `body` carries a valid, fresh signature."""
        if self._webhook is None:
            return
        missing = [name for name in SIGNATURE_HEADERS if not headers.get(name)]
        if missing:
            raise unauthorized(
                f"Missing Standard Webhooks header(s): {', '.join(missing)}.", reason="unsigned"
            )
        try:
            # The library compares the text form of the body; JSON is UTF-8 by definition.
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise unparseable("The body is not valid UTF-8.") from exc
        signed = {name: headers[name] for name in SIGNATURE_HEADERS}
        try:
            self._webhook.verify(body, signed, json_parse=False)
        except WebhookVerificationError as exc:
            raise _explain(str(exc)) from exc
        except ValueError as exc:  # malformed `v1,<base64>` items break the library's split
            raise unauthorized(
                "webhook-signature is malformed: expected space-separated `v1,<base64>` items."
            ) from exc


def _explain(message: str) -> Exception:
    if "too old" in message or "too new" in message:
        return unauthorized(
            "webhook-timestamp is outside the 5-minute tolerance; check the sender's clock "
            "and sign each delivery when it is sent.",
            reason="stale_signature",
        )
    if "Invalid Signature Headers" in message:
        return unauthorized("webhook-timestamp is not a Unix timestamp in seconds.")
    return unauthorized(
        "No webhook-signature matches the body: wrong secret, or the body was altered."
    )
