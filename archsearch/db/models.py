"""SQLAlchemy 2.0 typed models of the store (after Optuna's ``storages/_rdb/models.py``).

Tables: ``runs`` (one search), ``architectures`` (one row per distinct digest, with its
exact costs), ``trials`` (one evaluation of an architecture in a run), ``scores`` (one row per
trial and metric); for latency, ``devices`` (an identity and its key), ``latency_entries``
(the look-up tables), ``latency_fits`` (corrections) and ``network_latencies`` (whole networks
timed); ``trial_intermediates`` (the values a trial reported while it ran, e.g. accuracy per
epoch). Timestamps are naive UTC. A NaN score is stored as NULL.

Crash safety: a run records its ``owner`` (the process driving it) and a ``heartbeat_at`` that
owner refreshes while it lives, and the strategy's state after the last told batch; a trial
records its worker, heartbeat and ``attempts`` (how many times an evaluation was started).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

TRIAL_STATES = ("waiting", "running", "complete", "failed", "pruned")
"""``waiting``: queued for a worker; ``running``: a worker is evaluating it (heartbeat);
``complete``/``failed``: finished; ``pruned``: stopped early by a scheduler (ASHA)."""
RUN_STATUSES = ("queued", "running", "finished", "interrupted", "failed")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class RunModel(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space: Mapped[str] = mapped_column(String(255))
    space_yaml: Mapped[str] = mapped_column(Text)
    strategy: Mapped[str] = mapped_column(String(255))
    strategy_config: Mapped[dict[str, Any]] = mapped_column(JSON)
    objectives: Mapped[list[Any]] = mapped_column(JSON)
    evaluators: Mapped[dict[str, Any]] = mapped_column(JSON)
    constraints: Mapped[list[Any]] = mapped_column(JSON)
    budget_macs: Mapped[int | None] = mapped_column(BigInteger)
    budget_params: Mapped[int | None] = mapped_column(BigInteger)
    seed: Mapped[int] = mapped_column(Integer)
    n_trials: Mapped[int | None] = mapped_column(Integer)
    time_limit: Mapped[float | None] = mapped_column(Float)
    batch_size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    host: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    strategy_state: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)
    sweep: Mapped[str | None] = mapped_column(String(255), index=True)
    sweep_point: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    trials: Mapped[list[TrialModel]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )


class ArchitectureModel(Base):
    __tablename__ = "architectures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    spec: Mapped[str] = mapped_column(Text)
    params: Mapped[int] = mapped_column(BigInteger, index=True)
    macs: Mapped[int] = mapped_column(BigInteger, index=True)
    activations: Mapped[int] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TrialModel(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("run_id", "number", name="uq_trials_run_number"),
        UniqueConstraint("run_id", "architecture_id", name="uq_trials_run_architecture"),
        Index("ix_trials_run_state", "run_id", "state", "architecture_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architectures.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    worker: Mapped[str | None] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(64))
    """The device its scores were computed on (training scores; NULL where none applies)."""
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    run: Mapped[RunModel] = relationship(back_populates="trials")
    architecture: Mapped[ArchitectureModel] = relationship()
    scores: Mapped[list[ScoreModel]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class ScoreModel(Base):
    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("trial_id", "metric", name="uq_scores_trial_metric"),
        # A run's column of one metric in trial order, values included (index-only scans).
        Index("ix_scores_run_metric", "run_id", "metric", "trial_id", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    # The trial's run, copied: a score is written once, with its trial's final state.
    run_id: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)


class TrialColumnsModel(Base):
    """A batch of a run's complete trials as columns: the projection of ``trials``,
    ``architectures`` and ``scores`` that Pareto fronts read (see
    :mod:`archsearch.db.columns`), written in the transaction that completes the trials.

    Arrays are little-endian: ``trial_ids``, ``architecture_ids`` (int64, n), ``costs``
    (int64, 3 x n: params, macs, activations), ``metric_values`` (float64, len(metrics) x n, NaN
    where a trial has no value).
    """

    __tablename__ = "trial_columns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    n: Mapped[int] = mapped_column(Integer)
    trial_ids: Mapped[bytes] = mapped_column(LargeBinary)
    architecture_ids: Mapped[bytes] = mapped_column(LargeBinary)
    costs: Mapped[bytes] = mapped_column(LargeBinary)
    metrics: Mapped[list[Any]] = mapped_column(JSON)
    metric_values: Mapped[bytes] = mapped_column(LargeBinary)


class TrialIntermediateModel(Base):
    """A value a trial reported while running (step = epoch or report number)."""

    __tablename__ = "trial_intermediates"
    __table_args__ = (
        UniqueConstraint("trial_id", "step", "metric", name="uq_trial_intermediates_step"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DeviceModel(Base):
    """A measuring device by identity (hardware, runtime versions, options)."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    identity: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TimingColumns:
    """The statistics of a timing (:class:`archsearch.cost.latency.Timing`)."""

    median_ms: Mapped[float] = mapped_column(Float)
    p10_ms: Mapped[float] = mapped_column(Float)
    p90_ms: Mapped[float] = mapped_column(Float)
    iqr_ms: Mapped[float] = mapped_column(Float)
    mean_ms: Mapped[float] = mapped_column(Float)
    repeats: Mapped[int] = mapped_column(Integer)
    warmup: Mapped[int] = mapped_column(Integer)
    rel_median: Mapped[float] = mapped_column(Float)
    ref_ms: Mapped[float] = mapped_column(Float)


class LatencyEntryModel(TimingColumns, Base):
    """One look-up-table entry: a block at an input shape, timed on a device."""

    __tablename__ = "latency_entries"
    __table_args__ = (
        UniqueConstraint("device_id", "signature", name="uq_latency_entries_device_signature"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    signature: Mapped[str] = mapped_column(String(64))
    block_type: Mapped[str] = mapped_column(String(64), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # NULL only for entries measured before input layouts were recorded (protocol 1).
    out_layout: Mapped[str | None] = mapped_column(String(8))
    measured_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    host: Mapped[str] = mapped_column(String(255))


class LatencyFitModel(Base):
    """A fitted per-device correction of the look-up-table sum, with its residuals."""

    __tablename__ = "latency_fits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    scale: Mapped[float] = mapped_column(Float)
    ref_ms: Mapped[float] = mapped_column(Float)
    type_scales: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ridge: Mapped[float | None] = mapped_column(Float)
    loo_mape: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer)
    mape: Mapped[float] = mapped_column(Float)
    residuals: Mapped[list[Any]] = mapped_column(JSON)
    fitted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class NetworkLatencyModel(TimingColumns, Base):
    """A whole network timed on a device, with the prediction made for it at that time."""

    __tablename__ = "network_latencies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architectures.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    block_sum: Mapped[float | None] = mapped_column(Float)
    predicted_ms: Mapped[float | None] = mapped_column(Float)
    measured_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    host: Mapped[str] = mapped_column(String(255))


SUPERNET_STATUSES = ("training", "finished", "interrupted", "failed")


class SupernetModel(Base):
    """A weight-sharing supernet training: the checkpoint's path (the weights stay on disk),
    its configuration and its training curve (one row per epoch)."""

    __tablename__ = "supernets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space: Mapped[str] = mapped_column(String(255))
    space_digest: Mapped[str] = mapped_column(String(64))
    checkpoint: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    curve: Mapped[list[Any]] = mapped_column(JSON)
    epochs_done: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="training")
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
