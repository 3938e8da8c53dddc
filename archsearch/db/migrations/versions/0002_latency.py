"""latency: devices, look-up-table entries, fits, network measurements

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 20:57:13.528344
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("identity", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "latency_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("block_type", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("median_ms", sa.Float(), nullable=False),
        sa.Column("p10_ms", sa.Float(), nullable=False),
        sa.Column("p90_ms", sa.Float(), nullable=False),
        sa.Column("iqr_ms", sa.Float(), nullable=False),
        sa.Column("mean_ms", sa.Float(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("warmup", sa.Integer(), nullable=False),
        sa.Column("rel_median", sa.Float(), nullable=False),
        sa.Column("ref_ms", sa.Float(), nullable=False),
        sa.Column("measured_at", sa.DateTime(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id", "signature", name="uq_latency_entries_device_signature"),
    )
    with op.batch_alter_table("latency_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_latency_entries_block_type"), ["block_type"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_latency_entries_device_id"), ["device_id"], unique=False
        )

    op.create_table(
        "latency_fits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("scale", sa.Float(), nullable=False),
        sa.Column("ref_ms", sa.Float(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("mape", sa.Float(), nullable=False),
        sa.Column("residuals", sa.JSON(), nullable=False),
        sa.Column("fitted_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("latency_fits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_latency_fits_device_id"), ["device_id"], unique=False)

    op.create_table(
        "network_latencies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("architecture_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("median_ms", sa.Float(), nullable=False),
        sa.Column("p10_ms", sa.Float(), nullable=False),
        sa.Column("p90_ms", sa.Float(), nullable=False),
        sa.Column("iqr_ms", sa.Float(), nullable=False),
        sa.Column("mean_ms", sa.Float(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("warmup", sa.Integer(), nullable=False),
        sa.Column("rel_median", sa.Float(), nullable=False),
        sa.Column("ref_ms", sa.Float(), nullable=False),
        sa.Column("block_sum", sa.Float(), nullable=True),
        sa.Column("predicted_ms", sa.Float(), nullable=True),
        sa.Column("measured_at", sa.DateTime(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["architecture_id"],
            ["architectures.id"],
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("network_latencies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_network_latencies_architecture_id"), ["architecture_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_network_latencies_device_id"), ["device_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("network_latencies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_network_latencies_device_id"))
        batch_op.drop_index(batch_op.f("ix_network_latencies_architecture_id"))

    op.drop_table("network_latencies")
    with op.batch_alter_table("latency_fits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_latency_fits_device_id"))

    op.drop_table("latency_fits")
    with op.batch_alter_table("latency_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_latency_entries_device_id"))
        batch_op.drop_index(batch_op.f("ix_latency_entries_block_type"))

    op.drop_table("latency_entries")
    op.drop_table("devices")
