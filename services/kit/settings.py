"""What every service's settings share: Kafka, topic names, time zone and the KPI rules."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
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
        default=None,
        description="Kafka bootstrap servers. Without it ingest refuses to start and the API "
        "serves only its database; `callpulse run` (embedded mode) never reads it.",
    )
    KAFKA_SECURITY_PROTOCOL: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How every Kafka client connects (TLS and/or SASL)."
    )
    KAFKA_SASL_MECHANISM: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism (required with SASL_PLAINTEXT and SASL_SSL)."
    )
    KAFKA_SASL_USERNAME: str | None = Field(default=None, description="SASL user name.")
    KAFKA_SASL_PASSWORD: SecretStr | None = Field(default=None, description="SASL password.")
    KAFKA_SSL_CAFILE: Path | None = Field(
        default=None, description="PEM CA bundle that signed the brokers' certificates."
    )
    KAFKA_SSL_CERTFILE: Path | None = Field(
        default=None, description="PEM client certificate (mTLS); its key in KAFKA_SSL_KEYFILE."
    )
    KAFKA_SSL_KEYFILE: Path | None = Field(
        default=None, description="PEM private key of the client certificate (mTLS)."
    )
    KAFKA_SSL_CHECK_HOSTNAME: bool = Field(
        default=True, description="Check that a broker's certificate names the host dialled."
    )
    REPLICATION_FACTOR: int = Field(
        default=-1,
        description="Replication factor of the topics `callpulse topics create` makes; -1: the "
        "broker's default.replication.factor.",
    )
    MIN_INSYNC_REPLICAS: int | None = Field(
        default=None, gt=0, description="min.insync.replicas of those topics (unset: broker's)."
    )
    CREATE_TOPICS: bool = Field(
        default=False,
        description="Create missing topics at start as `callpulse topics create` does, before "
        "checking them (development and tests; in production run `callpulse topics create`).",
    )
    EVENTS_TOPIC: str = topics.CALL_EVENTS
    FACTS_TOPIC: str = topics.REP_FACTS
    KPIS_TOPIC: str = topics.KPIS
    CALLS_TOPIC: str = topics.CALLS
    ALERTS_TOPIC: str = topics.ALERTS
    ROSTER_TOPIC: str = topics.ROSTER
    DEAD_LETTERS_TOPIC: str = topics.DEAD_LETTERS
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
    FORGOTTEN_CALL_RETENTION_SECONDS: float = Field(
        default=2 * 86400.0,
        ge=0,
        description=(
            "How long a forgotten call's event ids are kept after its state goes, so a replayed "
            "event is recognised; a call first seen by an event that arrives later than both "
            "retentions after it occurred goes to history only (counted as too_late)."
        ),
    )

    @field_validator(
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SSL_CAFILE",
        "KAFKA_SSL_CERTFILE",
        "KAFKA_SSL_KEYFILE",
        "MIN_INSYNC_REPLICAS",
        mode="before",
    )
    @classmethod
    def _blank_kafka_is_unset(cls, value: object) -> object:
        # `CALLPULSE_KAFKA_SSL_CAFILE=` in an env file or a manifest means "not configured".
        return None if value == "" else value

    @field_validator("REPLICATION_FACTOR")
    @classmethod
    def _replication(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError(
                f"{ENV_PREFIX}REPLICATION_FACTOR={value} must be -1 (the broker's default) or >= 1"
            )
        return value

    @model_validator(mode="after")
    def _kafka_security(self) -> Self:
        problem = kafka_security_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self

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


def kafka_security_problem(s: CommonSettings) -> str | None:
    """What is wrong with the Kafka security settings taken together, in one sentence, or None."""
    protocol = s.KAFKA_SECURITY_PROTOCOL
    p = ENV_PREFIX
    sasl = protocol.startswith("SASL_")
    tls = protocol.endswith("SSL")
    sasl_set = [
        name
        for name in ("KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD")
        if getattr(s, name) is not None
    ]
    tls_set = [
        name
        for name in ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE")
        if getattr(s, name) is not None
    ]
    if sasl:
        missing = [
            p + name
            for name in ("KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD")
            if name not in sasl_set
        ]
        if missing:
            return f"{p}KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}"
    elif sasl_set:
        return (
            f"{', '.join(p + n for n in sasl_set)} set but {p}KAFKA_SECURITY_PROTOCOL={protocol}: "
            "use SASL_PLAINTEXT or SASL_SSL"
        )
    if not tls and tls_set:
        return (
            f"{', '.join(p + n for n in tls_set)} set but {p}KAFKA_SECURITY_PROTOCOL={protocol}: "
            "use SSL or SASL_SSL"
        )
    if s.KAFKA_SSL_KEYFILE is not None and s.KAFKA_SSL_CERTFILE is None:
        return f"{p}KAFKA_SSL_KEYFILE needs {p}KAFKA_SSL_CERTFILE (the client certificate)"
    for name in tls_set:
        path = getattr(s, name)
        if not path.is_file():
            return f"{p}{name}={path} is not a readable file"
    return None


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_or_exit(cls: type[SettingsT], command: str) -> SettingsT:
    """Settings from the environment, or exit with one line naming the first wrong setting."""
    try:
        return cls()
    except ValidationError as exc:
        raise SystemExit(f"callpulse {command}: {settings_error(exc)}") from None


def settings_error(exc: ValidationError) -> str:
    """The first error of a settings class in one line, under the variable's name."""
    error = exc.errors()[0]
    message = str(error["msg"]).removeprefix("Value error, ")
    names = [str(part) for part in error["loc"]]
    if names and not message.startswith(ENV_PREFIX):
        return f"{ENV_PREFIX}{names[0]}: {message}"
    return message
