"""Call facts: what each stored call credits to its rep, per counter and time; backfilled.

The reports sum these instead of recomputing KPIs from the call columns, so history follows the
KPI rule table exactly as the live windows do. Calls stored before this revision get their facts
derived here from their columns, by the same rules (`repository.legacy_facts` does the same for
records that arrive without facts, and a test holds the two to each other). Two approximations,
because the old rows lack the data: a survey lands at the call's last event (its own time was
not stored), and conversations use the default threshold of 300 s.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
CONVERSATION_MIN_SECONDS = 300

_FIRST = "COALESCE(started_at, answered_at, ended_at)"
_CONNECT = "COALESCE(answered_at, started_at, ended_at)"
_TALK_MS = "ROUND(CAST(talk_seconds AS NUMERIC) * 1000)"
_TALKED = "connected AND NOT stale_closed"
_SALE = "outcome = 'sale'"

BACKFILL: tuple[tuple[str, str, str, str], ...] = (
    # (counter, when it lands, how much, which calls) -- the rule table over the old columns
    ("dials", _FIRST, "1", "COALESCE(direction, 'outbound') <> 'inbound'"),
    ("inbound_calls", _CONNECT, "1", "connected AND direction = 'inbound'"),
    ("connects", _CONNECT, "1", "connected"),
    ("talk_seconds", "ended_at", f"{_TALK_MS} / 1000.0", f"{_TALKED} AND {_TALK_MS} > 0"),
    (
        "conversations",
        "ended_at",
        "1",
        f"{_TALKED} AND talk_seconds >= {CONVERSATION_MIN_SECONDS}",
    ),
    ("conversions", "outcome_at", "1", _SALE),
    ("revenue", "outcome_at", "amount", f"{_SALE} AND amount > 0"),
    ("csat_sum", "last_event_at", "csat", "csat IS NOT NULL"),
    ("csat_responses", "last_event_at", "1", "csat IS NOT NULL"),
)


def upgrade() -> None:
    """Create call_facts and derive the facts of the calls already stored."""
    op.create_table(
        "call_facts",
        sa.Column("call_id", sa.String(200), primary_key=True),
        sa.Column("kpi", sa.String(50), primary_key=True),
        sa.Column("at", TS, primary_key=True),
        sa.Column("value", sa.Numeric(18, 4), nullable=False),
        sa.Column("rep_id", sa.String(200), nullable=False),
        sa.Column("team_id", sa.String(200), nullable=True),
    )
    # Reports read a time range, of every team or of one.
    op.create_index("ix_call_facts_at", "call_facts", ["at"])
    op.create_index("ix_call_facts_team_id_at", "call_facts", ["team_id", "at"])
    for kpi, at, value, condition in BACKFILL:
        # Constants only: nothing here comes from outside the migration.
        op.execute(
            "INSERT INTO call_facts (call_id, kpi, at, value, rep_id, team_id) "  # noqa: S608
            f"SELECT call_id, '{kpi}', {at}, {value}, rep_id, team_id FROM calls "
            f"WHERE rep_id IS NOT NULL AND {at} IS NOT NULL AND {condition}"
        )


def downgrade() -> None:
    """Drop call_facts (the calls keep their columns; nothing is lost)."""
    op.drop_table("call_facts")
