"""distributed runs: run ownership and heartbeat, strategy state, sweeps, trial attempts and
intermediate values

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("strategy_state", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("sweep", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("sweep_point", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_runs_sweep"), ["sweep"], unique=False)
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("attempts", sa.Integer(), server_default="1", nullable=False)
        )
    op.create_table(
        "trial_intermediates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("trial_id", "step", "metric", name="uq_trial_intermediates_step"),
    )
    with op.batch_alter_table("trial_intermediates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_trial_intermediates_trial_id"), ["trial_id"], unique=False
        )


def downgrade() -> None:
    # recreate="never": SQLite (>= 3.35) drops columns in place. Recreating `runs` would drop
    # the old table, and SQLite's DROP TABLE deletes its rows first, cascading to every trial.
    with op.batch_alter_table("trial_intermediates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trial_intermediates_trial_id"))
    op.drop_table("trial_intermediates")
    with op.batch_alter_table("trials", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("attempts")
    with op.batch_alter_table("runs", schema=None, recreate="never") as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_sweep"))
        batch_op.drop_column("sweep_point")
        batch_op.drop_column("sweep")
        batch_op.drop_column("strategy_state")
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("owner")
