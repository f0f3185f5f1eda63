"""API keys scoped to one team: api_keys.team_id (null: every team, as before).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add api_keys.team_id."""
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("team_id", sa.String(200), nullable=True))


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("team_id")
