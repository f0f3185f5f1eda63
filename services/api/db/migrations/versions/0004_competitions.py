"""Competitions: their definitions, the frozen results of ended periods (with winners and
corrections), the announcements made on the teams' channels, and indexes for per-rep facts and
for the calls stored since a time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the tables and the index."""
    op.create_table(
        "competitions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "competition_results",
        sa.Column("competition_id", sa.Integer(), primary_key=True),
        sa.Column("period_key", sa.String(20), primary_key=True),
        sa.Column("period_start", TS, nullable=False),
        sa.Column("period_end", TS, nullable=False),
        sa.Column("frozen_at", TS, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("winners", sa.JSON(), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("corrections", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index(
        "ix_competition_results_end", "competition_results", ["competition_id", "period_end"]
    )
    op.create_table(
        "competition_announcements",
        sa.Column("announcement_id", sa.String(300), primary_key=True),
        sa.Column("competition_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
    )
    op.create_index(
        "ix_competition_announcements_competition",
        "competition_announcements",
        ["competition_id", "created_at"],
    )
    # A competition of reps refreshes and drills down by rep over a time range; its periodic
    # refresh asks which calls were stored since it last looked.
    op.create_index("ix_call_facts_rep_id_at", "call_facts", ["rep_id", "at"])
    op.create_index("ix_calls_updated_at", "calls", ["updated_at"])


def downgrade() -> None:
    """Drop what upgrade created."""
    op.drop_index("ix_calls_updated_at", table_name="calls")
    op.drop_index("ix_call_facts_rep_id_at", table_name="call_facts")
    op.drop_table("competition_announcements")
    op.drop_table("competition_results")
    op.drop_table("competitions")
