"""A run's complete trials as columns: what a Pareto front of a million trials reads.

``scores`` holds one row per trial and metric; a front over two objectives would join a
million trials to two million scores and move every value through the database driver as a
Python object (seconds). So the transaction that completes trials also appends them, packed,
to ``trial_columns`` (:class:`~archsearch.db.models.TrialColumnsModel`): trial and
architecture ids, the three costs, and the values of every metric, as little-endian numpy
arrays. A front reads the run's few dozen rows and unpacks them with ``numpy.frombuffer``.

Batches are merged as they accumulate, like the levels of a log-structured merge tree: a
batch of ``n`` trials sits at level ``floor(log8(n))``, and eight batches of one level become
one of the next, so a run finished one trial at a time holds at most about sixty rows below
:data:`MERGE_BELOW` trials and writes each trial O(log n) times. Merging happens under the
run's row lock that every completing transaction takes first.

A finished trial's state and scores never change afterwards, so the projection never needs
updating; it is deleted with its run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from archsearch.blocks import Cost
from archsearch.db.models import TrialColumnsModel

COSTS = ("params", "macs", "activations")
FANOUT = 8
"""Batches of one level merged into one of the next."""
MERGE_BELOW = 32_768
"""Batches this large are never merged again (a million trials: about thirty of them)."""
_I8 = np.dtype("<i8")
_F8 = np.dtype("<f8")


@dataclass(frozen=True)
class Completed:
    """A trial that completed: its store id, architecture id, costs and scores."""

    trial_id: int
    architecture_id: int
    cost: Cost
    values: Mapping[str, float]


@dataclass
class RunColumns:
    """A run's complete trials, sorted by trial id, as arrays of equal length."""

    trial_ids: NDArray[np.int64]
    architecture_ids: NDArray[np.int64]
    values: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    """Costs and metrics by name."""

    def __len__(self) -> int:
        return len(self.trial_ids)

    def column(self, name: str) -> NDArray[np.float64]:
        """The values of ``name``; NaN throughout for a metric no trial has."""
        found = self.values.get(name)
        return found if found is not None else np.full(len(self), np.nan)


def append(s: Session, run_id: int, trials: Sequence[Completed]) -> None:
    """Appends completed trials of a run to its columns (inside the completing transaction,
    after the run's row lock), merging batches as levels fill up."""
    if not trials:
        return
    metrics = sorted({m for t in trials for m in t.values})
    values = np.full((len(metrics), len(trials)), np.nan)
    for j, t in enumerate(trials):
        for i, m in enumerate(metrics):
            values[i, j] = t.values.get(m, np.nan)
    ids = np.array([t.trial_id for t in trials], dtype=_I8)
    archs = np.array([t.architecture_id for t in trials], dtype=_I8)
    costs = np.array([[getattr(t.cost, c) for t in trials] for c in COSTS], dtype=_I8)
    s.add(TrialColumnsModel(**pack(run_id, ids, archs, costs, metrics, values)))
    s.flush()
    _merge(s, run_id)


def read(
    s: Session, run_id: int, names: Sequence[str] | None = None, *, architectures: bool = False
) -> RunColumns:
    """The run's complete trials, sorted by trial id: every cost and metric, or ``names``
    only (the blobs of the others are not fetched), and with ``architectures`` their
    architecture ids (else an empty array)."""
    M = TrialColumnsModel
    wanted = None if names is None else set(names)
    costs_too = wanted is None or bool(wanted & set(COSTS))
    metrics_too = wanted is None or bool(wanted - set(COSTS))
    fields = [M.n, M.trial_ids, M.metrics]
    fields += [M.architecture_ids] if architectures else []
    fields += [M.costs] if costs_too else []
    fields += [M.metric_values] if metrics_too else []
    rows = [
        _Batch(**row._asdict()) for row in s.execute(select(*fields).where(M.run_id == run_id))
    ]
    ids, archs, costs, metrics, values = _concat(rows)
    order = None if np.all(ids[1:] > ids[:-1]) else np.argsort(ids, kind="stable")

    def sort(a: NDArray[Any]) -> NDArray[Any]:
        return a if order is None else a[order]

    out = RunColumns(sort(ids), sort(archs) if architectures else np.empty(0, np.int64))
    for i, c in enumerate(COSTS):
        if costs_too and (wanted is None or c in wanted):
            out.values[c] = sort(costs[i]).astype(np.float64)
    for i, m in enumerate(metrics):
        if metrics_too and (wanted is None or m in wanted):
            out.values[m] = sort(values[i])
    return out


@dataclass
class _Batch:
    """A ``trial_columns`` row, with the blobs a read asked for."""

    n: int
    trial_ids: bytes
    metrics: list[str]
    architecture_ids: bytes | None = None
    costs: bytes | None = None
    metric_values: bytes | None = None


def _level(n: int) -> int:
    return int(np.log(max(n, 1)) / np.log(FANOUT) + 1e-9)


def _merge(s: Session, run_id: int) -> None:
    M = TrialColumnsModel
    while True:
        small = s.execute(select(M.id, M.n).where(M.run_id == run_id, M.n < MERGE_BELOW)).all()
        levels: dict[int, list[int]] = {}
        for row_id, n in small:
            levels.setdefault(_level(n), []).append(row_id)
        full = [ids for _, ids in sorted(levels.items()) if len(ids) >= FANOUT]
        if not full:
            return
        rows = [
            _Batch(**row._asdict()) for row in s.execute(select(*_ALL).where(M.id.in_(full[0])))
        ]
        merged = TrialColumnsModel(**pack(run_id, *_concat(rows)))
        s.execute(delete(M).where(M.id.in_(full[0])))
        s.add(merged)
        s.flush()


_Packed = tuple[
    NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], list[str], NDArray[np.float64]
]
"""Trial ids, architecture ids, costs (3 x n), metric names, values (metrics x n)."""


_ALL = (
    TrialColumnsModel.n,
    TrialColumnsModel.trial_ids,
    TrialColumnsModel.metrics,
    TrialColumnsModel.architecture_ids,
    TrialColumnsModel.costs,
    TrialColumnsModel.metric_values,
)


def _concat(rows: Sequence[_Batch]) -> _Packed:
    """The rows' arrays end to end (an array whose blob was not read stays unset)."""
    metrics = sorted({m for r in rows for m in r.metrics})
    where = {m: i for i, m in enumerate(metrics)}
    total = sum(r.n for r in rows)
    ids = np.empty(total, dtype=np.int64)
    archs = np.empty(total, dtype=np.int64)
    costs = np.empty((len(COSTS), total), dtype=np.int64)
    read_values = any(r.metric_values is not None for r in rows)
    values = np.full((len(metrics) if read_values else 0, total), np.nan)
    at = 0
    for r in rows:
        end = at + r.n
        ids[at:end] = np.frombuffer(r.trial_ids, dtype=_I8)
        if r.architecture_ids is not None:
            archs[at:end] = np.frombuffer(r.architecture_ids, dtype=_I8)
        if r.costs is not None:
            costs[:, at:end] = np.frombuffer(r.costs, dtype=_I8).reshape(len(COSTS), r.n)
        if r.metric_values is not None:
            mine = np.frombuffer(r.metric_values, dtype=_F8).reshape(len(r.metrics), r.n)
            for i, m in enumerate(r.metrics):
                values[where[m], at:end] = mine[i]
        at = end
    return ids, archs, costs, metrics, values


def pack(
    run_id: int,
    ids: NDArray[np.int64],
    archs: NDArray[np.int64],
    costs: NDArray[np.int64],
    metrics: Sequence[str],
    values: NDArray[np.float64],
) -> dict[str, Any]:
    """The column values of a ``trial_columns`` row (also used by the migration that fills
    the table for runs stored before it existed)."""
    return {
        "run_id": run_id,
        "n": len(ids),
        "trial_ids": np.asarray(ids, dtype=_I8).tobytes(),
        "architecture_ids": np.asarray(archs, dtype=_I8).tobytes(),
        "costs": np.asarray(costs, dtype=_I8).tobytes(),
        "metrics": list(metrics),
        "metric_values": np.asarray(values, dtype=_F8).tobytes(),
    }
