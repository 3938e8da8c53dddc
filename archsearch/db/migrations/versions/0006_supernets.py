"""supernets: weight-sharing supernet trainings (checkpoint path, config, curve)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "supernets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("space", sa.String(length=255), nullable=False),
        sa.Column("space_digest", sa.String(length=64), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("curve", sa.JSON(), nullable=False),
        sa.Column("epochs_done", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("supernets")
