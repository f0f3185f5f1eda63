"""Tables of the API: call history with what each call credits, API keys, the roster (teams,
reps, targets, alert rules), alert history with delivery state, and alert notification channels."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored in UTC; SQLite keeps no offset, so normalise before storing."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC (naive times are refused: they are ambiguous)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read back as aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the API tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON}


class Call(Base):
    """One call as last assembled by the aggregator (highest version wins)."""

    __tablename__ = "calls"

    call_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    rep_id: Mapped[str | None] = mapped_column(String(200), index=True)
    team_id: Mapped[str | None] = mapped_column(String(200), index=True)
    campaign_id: Mapped[str | None] = mapped_column(String(200))
    direction: Mapped[str | None] = mapped_column(String(20))
    started_at: Mapped[datetime | None] = mapped_column(index=True)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_status: Mapped[str | None] = mapped_column(String(40))
    talk_seconds: Mapped[float] = mapped_column(Float, default=0)
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str | None] = mapped_column(String(100))
    outcome_at: Mapped[datetime | None]
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    csat: Mapped[int | None] = mapped_column(Integer)
    stale_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_event_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class CallFactRow(Base):
    """What a stored call credits to one counter of its rep, and when (`schemas.calls.CallFact`).

    Replaced as a whole whenever the call's row moves to a newer version, so the facts are
    always those of the stored version; reports sum them by the time each lands.
    """

    __tablename__ = "call_facts"
    __table_args__ = (
        Index("ix_call_facts_at", "at"),
        Index("ix_call_facts_team_id_at", "team_id", "at"),
        Index("ix_call_facts_rep_id_at", "rep_id", "at"),
    )

    call_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kpi: Mapped[str] = mapped_column(String(50), primary_key=True)
    at: Mapped[datetime] = mapped_column(primary_key=True)
    value: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    rep_id: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[str | None] = mapped_column(String(200))


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; the key itself is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    rep_id: Mapped[str | None] = mapped_column(String(200))
    """The one rep a `rep` key may read (its own scorecard); None for other roles."""
    team_id: Mapped[str | None] = mapped_column(String(200))
    """The one team a `viewer` or `supervisor` key is scoped to; None: every team."""


class TeamRow(Base):
    """A team: time zone and shift."""

    __tablename__ = "teams"

    team_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    shift: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RepRow(Base):
    """A rep and the provider agent ids that map to it."""

    __tablename__ = "reps"

    rep_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[str | None] = mapped_column(String(200), index=True)
    external_ids: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TargetsRow(Base):
    """The targets of one team (defaults) or one rep (overrides)."""

    __tablename__ = "targets"

    subject: Mapped[str] = mapped_column(String(10), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    targets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlertRulesRow(Base):
    """The alert rules of one team (defaults) or one rep (overrides by rule id)."""

    __tablename__ = "alert_rules"

    subject: Mapped[str] = mapped_column(String(10), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlertRow(Base):
    """One alert as of its latest transition (firing, then maybe resolved; never back).

    `seq` is taken from a single writer's `max(seq) + 1` at each applied transition, so it
    orders transitions by commit: Server-Sent Events use it as their resumable event id.
    """

    __tablename__ = "alerts"

    alert_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    state: Mapped[str] = mapped_column(String(10), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    rule: Mapped[str] = mapped_column(String(200))
    rep_id: Mapped[str] = mapped_column(String(200), index=True)
    team_id: Mapped[str | None] = mapped_column(String(200), index=True)
    kpi: Mapped[str] = mapped_column(String(50))
    window: Mapped[str] = mapped_column(String(10))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    messages: Mapped[dict[str, Any]]
    at: Mapped[datetime]
    fired_at: Mapped[datetime] = mapped_column(index=True)
    resolved_at: Mapped[datetime | None]
    acked_at: Mapped[datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertDelivery(Base):
    """One notification of one alert transition on one channel.

    UNIQUE(alert_id, state, channel) is what makes a transition notify each channel once,
    whichever replica consumed it and however often.
    """

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "state", "channel"),
        Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertChannelsRow(Base):
    """A team's notification channels (with their secrets: they sign each delivery)."""

    __tablename__ = "alert_channels"

    team_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    channels: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CompetitionRow(Base):
    """A competition: its definition (`schemas.competitions.CompetitionIn`) as JSON."""

    __tablename__ = "competitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CompetitionResultRow(Base):
    """The frozen standings of one ended period of a competition, with winners.

    The primary key makes freezing once per period whichever replica gets there first; a late
    event that changes it raises `revision` and appends to `corrections`.
    """

    __tablename__ = "competition_results"
    __table_args__ = (Index("ix_competition_results_end", "competition_id", "period_end"),)

    competition_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_key: Mapped[str] = mapped_column(String(20), primary_key=True)
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    frozen_at: Mapped[datetime]
    revision: Mapped[int] = mapped_column(Integer)
    winners: Mapped[list[str]] = mapped_column(JSON)
    rows: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    corrections: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CompetitionAnnouncementRow(Base):
    """One announcement of a competition; its id (kind, period, …) makes it happen once."""

    __tablename__ = "competition_announcements"
    __table_args__ = (
        Index("ix_competition_announcements_competition", "competition_id", "created_at"),
    )

    announcement_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    competition_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class DigestSettingsRow(Base):
    """A team's scheduled digests: when, in which language, to whom (`schemas.coaching`)."""

    __tablename__ = "digest_settings"

    team_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    settings: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DigestRun(Base):
    """One digest of one team and period, claimed before it is sent.

    The primary key (team, kind, period) is the claim: the replica whose INSERT succeeds sends
    it, so a digest goes out once however many replicas, restarts or ticks reach its time.
    """

    __tablename__ = "digest_runs"

    team_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    period_key: Mapped[str] = mapped_column(String(20), primary_key=True)
    status: Mapped[str] = mapped_column(String(10))
    claimed_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None]
