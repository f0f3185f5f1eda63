"""Alert history, alert deliveries, alert rules and notification channels.

Revision ID: 0002
Revises: 0001
Create Date: 2025-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the tables."""
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(512), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("rep_id", sa.String(200), nullable=False),
        sa.Column("team_id", sa.String(200), nullable=True),
        sa.Column("kpi", sa.String(50), nullable=False),
        sa.Column("window", sa.String(10), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("fired_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("acked_at", TS, nullable=True),
        sa.Column("acked_by", sa.String(200), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_alerts_state", "alerts", ["state"])
    op.create_index("ix_alerts_rep_id", "alerts", ["rep_id"])
    op.create_index("ix_alerts_team_id", "alerts", ["team_id"])
    op.create_index("ix_alerts_fired_at", "alerts", ["fired_at"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(512), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("alert_id", "state", "channel"),
    )
    # The dispatcher's claim: pending deliveries by due time.
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "alert_rules",
        sa.Column("subject", sa.String(10), primary_key=True),
        sa.Column("subject_id", sa.String(200), primary_key=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "alert_channels",
        sa.Column("team_id", sa.String(200), primary_key=True),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    """Drop the tables."""
    for table in ("alert_channels", "alert_rules", "alert_deliveries", "alerts"):
        op.drop_table(table)
