"""latency entries: the layout of each block's output

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Entries measured before (device identity protocol 1) keep NULL; their device keys differ
    # from the new protocol's, so they are kept but never mixed with new entries.
    with op.batch_alter_table("latency_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("out_layout", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("latency_entries", schema=None) as batch_op:
        batch_op.drop_column("out_layout")
