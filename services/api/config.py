"""API settings: read from `CALLPULSE_*` environment variables at entry points only."""

from __future__ import annotations

import httpx
from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator

from services.kit.secrets import check_webhook_secret
from services.kit.settings import CommonSettings

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./.callpulse/callpulse.db"


class ApiSettings(CommonSettings):
    """Where the API reads its read model and history from, and how it authenticates
    (KAFKA_BOOTSTRAP, topics, TIMEZONE and the KPI rules come from CommonSettings)."""

    DATABASE_URL: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy async URL; `postgresql://` is rewritten to `postgresql+asyncpg://`.",
    )
    BOOTSTRAP_ADMIN_KEY: SecretStr | None = Field(
        default=None, description="An admin API key ensured (stored hashed) at start."
    )
    REP_METRICS_CAP: int = Field(default=500, ge=0, description="Most reps with rep-level series.")
    CONSUMER_GROUP_PREFIX: str = "callpulse"
    KEY_CACHE_SECONDS: float = Field(
        default=30.0, ge=0, description="How long a verified key is trusted without the database."
    )
    SSE_QUEUE_SIZE: int = Field(default=1000, gt=0, description="Updates buffered per SSE client.")
    PUBLIC_URL: str | None = Field(
        default=None,
        description="External base URL of the API: links in alert notifications "
        "(Alertmanager `generatorURL`).",
    )
    ALERTMANAGER_URL: str | None = Field(
        default=None,
        description="Prometheus Alertmanager base URL (alerts go to `/api/v2/alerts`); a default "
        "channel for teams without their own channels.",
    )
    ALERT_WEBHOOK_URL: str | None = Field(
        default=None,
        description="A generic webhook (Standard Webhooks, Alert JSON body); a default channel for "
        "teams without their own channels. Needs ALERT_WEBHOOK_SECRET.",
    )
    ALERT_WEBHOOK_SECRET: SecretStr | None = Field(
        default=None, description="The `whsec_…` secret that signs ALERT_WEBHOOK_URL deliveries."
    )
    ALERT_DELIVERY_TIMEOUT_SECONDS: float = Field(
        default=10.0, gt=0, description="Timeout of one delivery attempt (per connect/read/write)."
    )
    ALERT_DELIVERY_MAX_ATTEMPTS: int = Field(
        default=8, ge=1, description="Attempts of one delivery before it is marked failed."
    )
    ALERT_RETRY_BASE_SECONDS: float = Field(
        default=5.0, gt=0, description="Delay after the first failed attempt; doubles each time."
    )
    ALERT_RETRY_MAX_SECONDS: float = Field(
        default=900.0, gt=0, description="Longest delay between two attempts (before jitter)."
    )
    ALERT_DELIVERY_MAX_AGE_SECONDS: float = Field(
        default=3600.0,
        gt=0,
        description="Transitions older than this when first stored are kept in history but not "
        "notified (e.g. a new API reading old alerts from the topic).",
    )
    ALERT_POLL_SECONDS: float = Field(
        default=1.0,
        gt=0,
        description="How often each replica looks for due deliveries and for alerts stored by "
        "other replicas (for its SSE clients).",
    )
    ALERTMANAGER_FIRING_TTL_SECONDS: float = Field(
        default=12 * 3600.0,
        gt=0,
        description="`endsAt` of a firing alert sent to Alertmanager, from its start: without it "
        "Alertmanager would resolve it after its resolve_timeout; the resolved transition ends "
        "it earlier.",
    )
    SMTP_HOST: str | None = Field(
        default=None,
        description="SMTP server of the digest e-mails; none: digests go to chats only.",
    )
    SMTP_PORT: int = Field(default=587, ge=1, le=65535)
    SMTP_USERNAME: str | None = None
    SMTP_PASSWORD: SecretStr | None = None
    SMTP_FROM: str = Field(default="callpulse@localhost", description="The digests' sender.")
    SMTP_STARTTLS: bool = Field(default=True, description="Upgrade with STARTTLS when offered.")
    SMTP_TIMEOUT_SECONDS: float = Field(default=30.0, gt=0)
    DIGEST_POLL_SECONDS: float = Field(
        default=30.0, gt=0, description="How often each replica looks for digests that are due."
    )
    DIGEST_CLOCK_START: AwareDatetime | None = Field(
        default=None,
        description="Tests only: the digest scheduler's clock starts at this time (then runs at "
        "real speed) instead of now.",
    )
    CSAT_ALERT_THRESHOLD: int = Field(
        default=2,
        ge=0,
        le=5,
        description="A survey score at or below this raises a `csat` alert to the team's "
        "channels with the call and rep (0: never).",
    )
    COACHING_CACHE_SECONDS: float = Field(
        default=30.0,
        ge=0,
        description="How long a team's scorecards and heatmaps are reused (0: never); then they "
        "are served while recomputed, so coaching shows calls stored at most twice this late.",
    )

    @field_validator("DATABASE_URL")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value[len(prefix) :]
        return value

    @field_validator(
        "KAFKA_BOOTSTRAP",
        "BOOTSTRAP_ADMIN_KEY",
        "PUBLIC_URL",
        "ALERTMANAGER_URL",
        "ALERT_WEBHOOK_URL",
        "ALERT_WEBHOOK_SECRET",
        "SMTP_HOST",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
        "DIGEST_CLOCK_START",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `FOO=` in an env file means "not configured".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("PUBLIC_URL", "ALERTMANAGER_URL", "ALERT_WEBHOOK_URL")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_http_url(value)
        return value

    @model_validator(mode="after")
    def _webhook_is_signed(self) -> ApiSettings:
        if self.ALERT_WEBHOOK_URL is not None and self.ALERT_WEBHOOK_SECRET is None:
            raise ValueError("CALLPULSE_ALERT_WEBHOOK_URL needs CALLPULSE_ALERT_WEBHOOK_SECRET")
        if self.ALERT_WEBHOOK_SECRET is not None:
            check_webhook_secret(self.ALERT_WEBHOOK_SECRET.get_secret_value())
        return self


def check_http_url(value: str) -> str:
    """`value` if it is an absolute http(s) URL with a host; ValueError otherwise."""
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"not a URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value
