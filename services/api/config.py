"""API settings: read from `CALLPULSE_*` environment variables at entry points only."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import topics
from schemas.roster import TimeZoneName

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./.callpulse/callpulse.db"


class ApiSettings(BaseSettings):
    """Where the API reads its read model and history from, and how it authenticates."""

    model_config = SettingsConfigDict(env_prefix="CALLPULSE_", extra="ignore")

    KAFKA_BOOTSTRAP: str | None = Field(
        default=None, description="Kafka bootstrap servers; unset means no Kafka consumers."
    )
    DATABASE_URL: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy async URL; `postgresql://` is rewritten to `postgresql+asyncpg://`.",
    )
    BOOTSTRAP_ADMIN_KEY: SecretStr | None = Field(
        default=None, description="An admin API key ensured (stored hashed) at start."
    )
    TIMEZONE: TimeZoneName = "UTC"
    KPIS_TOPIC: str = topics.KPIS
    CALLS_TOPIC: str = topics.CALLS
    ROSTER_TOPIC: str = topics.ROSTER
    ALERTS_TOPIC: str = topics.ALERTS
    PARTITIONS: int = Field(default=4, gt=0, description="Partitions of topics the API creates.")
    REP_METRICS_CAP: int = Field(default=500, ge=0, description="Most reps with rep-level series.")
    CONSUMER_GROUP_PREFIX: str = "callpulse"
    KEY_CACHE_SECONDS: float = Field(
        default=30.0, ge=0, description="How long a verified key is trusted without the database."
    )
    CONVERSATION_MIN_SECONDS: float = Field(
        default=300.0, gt=0, description="Talk time that makes a connect a conversation (reports)."
    )
    SSE_QUEUE_SIZE: int = Field(default=1000, gt=0, description="Updates buffered per SSE client.")

    @field_validator("DATABASE_URL")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value[len(prefix) :]
        return value

    @field_validator("KAFKA_BOOTSTRAP", "BOOTSTRAP_ADMIN_KEY", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `FOO=` in an env file means "not configured".
        return None if isinstance(value, str) and not value.strip() else value
