"""trials record the device their scores were computed on

``trials.device`` (nullable): the accelerator a training score ran on, as the evaluator
resolved it (``cpu``, ``cuda:0 (NVIDIA H200)``); NULL for trials whose scores need no device
choice and for trials stored before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("device", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN in place (SQLite >= 3.35): a batch copy of ``trials`` would
    # drop the table, and the drop cascades to every trial's scores.
    op.drop_column("trials", "device")
