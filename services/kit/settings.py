"""What every service's settings share: Kafka, topic names, time zone and the KPI rules."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import topics

ENV_PREFIX = "CALLPULSE_"


class CommonSettings(BaseSettings):
    """The base of each service's settings: one name and one default per shared setting.

    A service narrows a field when its meaning differs (the aggregator needs a Kafka address,
    so its KAFKA_BOOTSTRAP has a default instead of None).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    KAFKA_BOOTSTRAP: str | None = Field(
        default=None, description="Kafka bootstrap servers; unset means embedded mode (no Kafka)."
    )
    EVENTS_TOPIC: str = topics.CALL_EVENTS
    FACTS_TOPIC: str = topics.REP_FACTS
    KPIS_TOPIC: str = topics.KPIS
    CALLS_TOPIC: str = topics.CALLS
    ALERTS_TOPIC: str = topics.ALERTS
    ROSTER_TOPIC: str = topics.ROSTER
    PARTITIONS: int = Field(default=4, gt=0, description="Partitions of the topics it creates.")
    TIMEZONE: str = Field(default="UTC", description="Default team time zone (IANA name).")
    CONVERSATION_MIN_SECONDS: float = Field(
        default=300.0, gt=0, description="Talk time that makes a connect a conversation."
    )
    MAX_CALL_SECONDS: float = Field(
        default=4 * 3600.0,
        gt=0,
        description="A call with no end after this long is closed as failed (no talk credited).",
    )
    CALL_RETENTION_SECONDS: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="How long an ended call's state is kept after its last event, for late events.",
    )

    @field_validator("TIMEZONE")
    @classmethod
    def _iana_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        # ValueError: not a relative key; OSError: a tzdata folder such as "America"
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(
                f"{ENV_PREFIX}TIMEZONE={value!r} is not an IANA time zone name "
                "(e.g. UTC, Europe/Paris, America/New_York)"
            ) from exc
        return value
