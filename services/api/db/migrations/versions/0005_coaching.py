"""Coaching: each team's digest settings, one row per digest period claimed before it is sent
(so a digest goes out once however many replicas or restarts), and API keys restricted to one
rep (the `rep` role).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the digest tables; add api_keys.rep_id."""
    op.create_table(
        "digest_settings",
        sa.Column("team_id", sa.String(200), primary_key=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "digest_runs",
        sa.Column("team_id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(10), primary_key=True),
        sa.Column("period_key", sa.String(20), primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("claimed_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("rep_id", sa.String(200), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("rep_id")
    op.drop_table("digest_runs")
    op.drop_table("digest_settings")
