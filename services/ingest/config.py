"""Ingest settings: read from `CALLPULSE_*` environment variables at entry points only."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from services.kit.secrets import check_webhook_secret
from services.kit.settings import CommonSettings


class MissingSecretsError(RuntimeError):
    """A production start lacks secrets it needs."""


class IngestSettings(CommonSettings):
    """Configuration of the ingest routes and the Kafka publisher (KAFKA_BOOTSTRAP, EVENTS_TOPIC
    and the other shared settings come from CommonSettings)."""

    WEBHOOK_SECRET: SecretStr | None = Field(
        default=None, description="Standard Webhooks secret, `whsec_<base64>`."
    )
    TWILIO_AUTH_TOKEN: SecretStr | None = None
    TELNYX_PUBLIC_KEY: str | None = Field(
        default=None, description="Base64 Ed25519 public key from the Telnyx portal."
    )
    VONAGE_SIGNATURE_SECRET: SecretStr | None = None
    AIRCALL_TOKEN: SecretStr | None = None
    FREESWITCH_BASIC_AUTH: SecretStr | None = Field(
        default=None, description="`user:pass` that mod_json_cdr sends (its `cred` param)."
    )
    PUBLIC_URL: str | None = Field(
        default=None, description="External base URL that provider signatures cover."
    )
    PUBLISH_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0, le=120)
    MAX_BODY_BYTES: int = Field(default=5 * 1024 * 1024, gt=0)
    MAX_EVENTS: int = Field(default=10_000, gt=0)
    MAX_FUTURE_SECONDS: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="An event whose occurred_at is further ahead of the server's clock than "
        "this is rejected (422): a sender's wrong clock or offset, not a call.",
    )
    ENV: Literal["development", "production"] = "development"

    @field_validator(
        "WEBHOOK_SECRET",
        "TWILIO_AUTH_TOKEN",
        "VONAGE_SIGNATURE_SECRET",
        "AIRCALL_TOKEN",
        "FREESWITCH_BASIC_AUTH",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `FOO=` in an env file means "not configured", not "the empty secret".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("WEBHOOK_SECRET")
    @classmethod
    def _webhook_secret_decodes(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_webhook_secret(value.get_secret_value())
        return value

    @field_validator("TELNYX_PUBLIC_KEY")
    @classmethod
    def _telnyx_key_decodes(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except ValueError as exc:  # binascii.Error, or non-ASCII text
            raise ValueError("must be base64") from exc
        if len(raw) != 32:
            raise ValueError("must be a base64 Ed25519 public key (32 bytes)")
        return value.strip()

    @field_validator("FREESWITCH_BASIC_AUTH")
    @classmethod
    def _basic_auth_has_user(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and ":" not in value.get_secret_value():
            raise ValueError("must be `user:password`")
        return value

    @field_validator("PUBLIC_URL")
    @classmethod
    def _public_url_is_http(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.strip().rstrip("/")

    def missing_production_secrets(self) -> list[str]:
        """Names of the environment variables a production start still needs."""
        if self.ENV != "production":
            return []
        missing = []
        if self.WEBHOOK_SECRET is None:
            missing.append("CALLPULSE_WEBHOOK_SECRET")
        if self.TWILIO_AUTH_TOKEN is not None and self.PUBLIC_URL is None:
            # Twilio signs the public URL; behind a proxy the request URL differs from it.
            missing.append("CALLPULSE_PUBLIC_URL (Twilio signatures cover it)")
        return missing

    def require_production_secrets(self) -> None:
        """Refuse a production start without its secrets, naming each missing one."""
        missing = self.missing_production_secrets()
        if missing:
            raise MissingSecretsError(
                "callpulse ingest refuses to start in production without: " + ", ".join(missing)
            )
