"""Initial tables: calls, api_keys, teams, reps, targets.

Revision ID: 0001
Revises:
Create Date: 2025-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the tables."""
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rep_id", sa.String(200), nullable=True),
        sa.Column("team_id", sa.String(200), nullable=True),
        sa.Column("campaign_id", sa.String(200), nullable=True),
        sa.Column("direction", sa.String(20), nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("end_status", sa.String(40), nullable=True),
        sa.Column("talk_seconds", sa.Float(), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(100), nullable=True),
        sa.Column("outcome_at", TS, nullable=True),
        sa.Column("amount", sa.Numeric(18, 4), nullable=True),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("stale_closed", sa.Boolean(), nullable=False),
        sa.Column("last_event_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_calls_rep_id", "calls", ["rep_id"])
    op.create_index("ix_calls_team_id", "calls", ["team_id"])
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_table(
        "teams",
        sa.Column("team_id", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("shift", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "reps",
        sa.Column("rep_id", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("team_id", sa.String(200), nullable=True),
        sa.Column("external_ids", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_reps_team_id", "reps", ["team_id"])
    op.create_table(
        "targets",
        sa.Column("subject", sa.String(10), primary_key=True),
        sa.Column("subject_id", sa.String(200), primary_key=True),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    """Drop the tables."""
    for table in ("targets", "reps", "teams", "api_keys", "calls"):
        op.drop_table(table)
