"""latency fits: per-block-type scales

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 21:16:03.564484
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("latency_fits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("type_scales", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("ridge", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("loo_mape", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("latency_fits", schema=None) as batch_op:
        batch_op.drop_column("loo_mape")
        batch_op.drop_column("ridge")
        batch_op.drop_column("type_scales")
