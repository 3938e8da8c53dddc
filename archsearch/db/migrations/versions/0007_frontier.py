"""frontier at scale: trial_columns (a run's complete trials as packed arrays, filled here
for the runs stored before), scores carry their run, trials indexed by run and state

A Pareto front reads the run's ``trial_columns`` rows instead of joining every score to its
trial. ``scores.run_id`` (backfilled) with an index by (run, metric) lists a run's metrics
with one lookup each; ``trials`` by (run, state) counts a run's trials by state (``runs``).
``ix_scores_metric_value`` (metric, value across all runs) had no query left and goes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 06:10:00
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scores", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("run_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE scores SET run_id = (SELECT trials.run_id FROM trials "
        "WHERE trials.id = scores.trial_id)"
    )
    # SQLite copies the table to make the column NOT NULL; no table refers to scores, so the
    # copy's DROP TABLE cascades nowhere.
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.alter_column("run_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index("ix_scores_metric_value")
        batch_op.create_index(
            "ix_scores_run_metric", ["run_id", "metric", "trial_id", "value"], unique=False
        )
    with op.batch_alter_table("trials", schema=None, recreate="never") as batch_op:
        batch_op.create_index(
            "ix_trials_run_state", ["run_id", "state", "architecture_id", "id"], unique=False
        )
    table = op.create_table(
        "trial_columns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("trial_ids", sa.LargeBinary(), nullable=False),
        sa.Column("architecture_ids", sa.LargeBinary(), nullable=False),
        sa.Column("costs", sa.LargeBinary(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("metric_values", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("trial_columns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trial_columns_run_id"), ["run_id"], unique=False)
    _fill(table)


def _fill(table: sa.Table) -> None:
    """Packs the complete trials of every stored run, in batches of MERGE_BELOW."""
    from archsearch.db.columns import COSTS, MERGE_BELOW, pack

    bind = op.get_bind()
    for (run_id,) in bind.execute(sa.text("SELECT id FROM runs ORDER BY id")).all():
        trials = bind.execute(
            sa.text(
                "SELECT t.id, t.architecture_id, a.params, a.macs, a.activations FROM trials t "
                "JOIN architectures a ON a.id = t.architecture_id "
                "WHERE t.run_id = :r AND t.state = 'complete' ORDER BY t.id"
            ),
            {"r": run_id},
        ).all()
        if not trials:
            continue
        rows = np.array(trials, dtype=np.int64).reshape(-1, 2 + len(COSTS))
        position = {int(t): i for i, t in enumerate(rows[:, 0])}
        scores = bind.execute(
            sa.text("SELECT trial_id, metric, value FROM scores WHERE run_id = :r"),
            {"r": run_id},
        ).all()
        metrics = sorted({m for _, m, _ in scores})
        values = np.full((len(metrics), len(rows)), np.nan)
        index = {m: i for i, m in enumerate(metrics)}
        for trial_id, metric, value in scores:
            at = position.get(trial_id)
            if at is not None and value is not None:
                values[index[metric], at] = value
        for lo in range(0, len(rows), MERGE_BELOW):
            part = slice(lo, lo + MERGE_BELOW)
            op.bulk_insert(
                table,
                [
                    pack(
                        run_id,
                        rows[part, 0],
                        rows[part, 1],
                        rows[part, 2:].T,
                        metrics,
                        values[:, part],
                    )
                ],
            )


def downgrade() -> None:
    with op.batch_alter_table("trial_columns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trial_columns_run_id"))
    op.drop_table("trial_columns")
    with op.batch_alter_table("trials", schema=None, recreate="never") as batch_op:
        batch_op.drop_index("ix_trials_run_state")
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_index("ix_scores_run_metric")
        batch_op.create_index("ix_scores_metric_value", ["metric", "value"], unique=False)
        batch_op.drop_column("run_id")
