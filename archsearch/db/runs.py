"""Runs, trials and scores in the store: creation, ownership and heartbeats, trials from
queued to finished, the results and the Pareto front of a run. PostgreSQL serialises trial
numbering per run with a row lock; a process that was taken over cannot write (see
:class:`RunTakenOver`)."""

from __future__ import annotations

import math
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from archsearch.blocks import Cost
from archsearch.db import columns
from archsearch.db.architectures import COST_NAMES, ArchitecturesStore
from archsearch.db.engine import (
    _fits,
    _from_db,
    _rowcount,
    _to_db,
    display_url,
    owner_alive,
    worker_id,
)
from archsearch.db.models import (
    ArchitectureModel,
    RunModel,
    ScoreModel,
    TrialColumnsModel,
    TrialIntermediateModel,
    TrialModel,
    utcnow,
)
from archsearch.errors import NotFoundError, StoreError, UserError
from archsearch.expr import Expr
from archsearch.spec import Architecture


@dataclass(frozen=True)
class RunConfig:
    """Everything a run is started with; stored, and enough to resume it."""

    space: str
    space_yaml: str
    strategy: str
    strategy_config: dict[str, Any]
    objectives: list[str]
    evaluators: dict[str, dict[str, Any]]
    constraints: list[str] = field(default_factory=list)
    budget_macs: int | None = None
    budget_params: int | None = None
    seed: int = 0
    n_trials: int | None = None
    time_limit: float | None = None
    batch_size: int = 32


@dataclass(frozen=True)
class RunInfo:
    """A stored run with its trial counts."""

    id: int
    config: RunConfig
    status: str
    created_at: datetime
    finished_at: datetime | None
    host: str
    version: str
    error: str | None
    n_complete: int = 0
    n_failed: int = 0
    n_pruned: int = 0
    n_active: int = 0
    """Trials queued or being evaluated (``waiting`` or ``running``)."""
    owner: str | None = None
    heartbeat_at: datetime | None = None
    sweep: str | None = None
    sweep_point: dict[str, Any] | None = None

    @property
    def n_finished(self) -> int:
        """Trials that count towards the run's ``n_trials``: complete, failed or pruned."""
        return self.n_complete + self.n_failed + self.n_pruned


@dataclass(frozen=True)
class TrialRecord:
    """One evaluated candidate to store."""

    arch: Architecture
    cost: Cost
    values: Mapping[str, float]
    state: str = "complete"
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker: str | None = None
    device: str | None = None
    """The device the scores were computed on (see :func:`device_label`)."""


@dataclass(frozen=True)
class StoredTrial:
    """A trial read back from the store (NaN where a score was not a number)."""

    number: int
    digest: str
    spec: str
    state: str
    cost: Cost
    values: dict[str, float]
    device: str | None = None


class RunTakenOver(UserError):
    """Another process has claimed the run (``archsearch run --resume ID --takeover``); the
    process that drove it stops without writing to it again."""

    def __init__(self, run_id: int, owner: str | None) -> None:
        self.run_id = run_id
        self.owner = owner
        super().__init__(
            f"run {run_id} was taken over by {owner or 'another process'}; this process stops "
            "(the trials it finished before are kept)"
        )


def device_label(device: str | None) -> str | None:
    """A device description as stored (at most the column's 64 characters)."""
    return device[:64] if device else None


def is_stale(run: RunInfo, stale_after: float) -> bool:
    """True for a run marked ``running`` whose owner is gone: a dead process on this host, or
    elsewhere a heartbeat older than ``stale_after`` seconds (a crash, ``kill -9``, a lost
    machine). ``archsearch run --resume`` takes such a run over."""
    if run.status != "running":
        return False
    alive = owner_alive(run.owner)
    if alive is not None:
        return not alive
    if run.heartbeat_at is None:
        return True
    return (utcnow() - run.heartbeat_at).total_seconds() > stale_after


@dataclass(frozen=True)
class Deleted:
    """What :meth:`Store.delete_run` removed (and the architectures it kept)."""

    trials: int
    scores: int
    architectures_kept: int


FINISHED_STATES = ("complete", "failed", "pruned")


ACTIVE_STATES = ("waiting", "running")


@dataclass(frozen=True)
class Claim:
    """What :meth:`Store.claim_run` found when it took a run over."""

    previous_owner: str | None
    previous_status: str
    requeued: int
    """Trials left ``waiting``/``running`` by the previous owner, put back in the queue."""


class RunsStore(ArchitecturesStore):
    """Runs and their trials, scores and intermediate values."""

    def create_run(
        self,
        config: RunConfig,
        *,
        status: str = "running",
        owner: str | None = None,
        sweep: str | None = None,
        sweep_point: dict[str, Any] | None = None,
    ) -> int:
        """Stores a new run (``running``, owned by this process; or ``queued``, unowned, for a
        sweep's runs not started yet); returns its id."""
        from archsearch._version import __version__

        with self.transaction() as s:
            run = RunModel(
                **config.__dict__,
                status=status,
                host=socket.gethostname(),
                version=__version__,
                owner=owner if owner is not None or status != "running" else worker_id(),
                heartbeat_at=utcnow() if status == "running" else None,
                sweep=sweep,
                sweep_point=sweep_point,
            )
            s.add(run)
            s.flush()
            return run.id

    def claim_run(
        self, run_id: int, *, owner: str, stale_after: float, force: bool = False
    ) -> Claim:
        """Makes ``owner`` the process driving run ``run_id`` and marks it ``running``.

        A run marked ``running`` whose owner still lives (same host: its pid; elsewhere: a
        heartbeat newer than ``stale_after`` seconds) is refused unless ``force``. Trials the
        previous owner left ``waiting`` or ``running`` are put back to ``waiting``: its workers
        died with it, and the new owner evaluates them again.

        Raises:
            StoreError: no such run.
            UserError: the run is being driven by a live process.
        """
        with self.transaction() as s:
            run = self._locked(s, run_id)
            previous, status = run.owner, run.status
            if status == "running" and previous not in (None, owner) and not force:
                alive = owner_alive(previous)
                age = (
                    None
                    if run.heartbeat_at is None
                    else (utcnow() - run.heartbeat_at).total_seconds()
                )
                if alive or (alive is None and age is not None and age < stale_after):
                    seen = "" if age is None else f" (last heartbeat {age:.0f}s ago)"
                    raise UserError(
                        f"--resume {run_id}: the run is being driven by {previous}{seen}; stop "
                        f"that process first, or if it is gone wait {stale_after:.0f}s for its "
                        "heartbeat to go stale, or pass --takeover"
                    )
            moved = _rowcount(
                s.execute(
                    update(TrialModel)
                    .where(TrialModel.run_id == run_id, TrialModel.state.in_(ACTIVE_STATES))
                    .values(state="waiting", worker=None)
                )
            )
            run.owner = owner
            run.status = "running"
            run.error = None
            run.finished_at = None
            run.heartbeat_at = utcnow()
            return Claim(previous, status, moved)

    def take_queued(self, queue: str, owner: str) -> int | None:
        """Takes the oldest run ``queued`` for ``queue`` (its owner is the queue's name) for
        ``owner``, marking it ``running``; None when the queue is empty. Two takers never get
        the same run (a row lock; SQLite's write lock)."""
        with self.transaction() as s:
            q = (
                select(RunModel)
                .where(RunModel.status == "queued", RunModel.owner == queue)
                .order_by(RunModel.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            run = s.scalars(q).first()
            if run is None:
                return None
            run.status, run.owner, run.heartbeat_at = "running", owner, utcnow()
            return run.id

    def stop_run(self, run_id: int, *, status: str, owner: str | None) -> RunInfo:
        """Hands the run to ``owner`` (a queue's name, or None) with ``status``: ``queued``
        to run again, ``interrupted`` to stop. A process driving the run sees another owner
        at its next heartbeat and stops (:class:`RunTakenOver`), keeping what it stored.

        Raises:
            StoreError: no such run.
        """
        with self.transaction() as s:
            run = self._locked(s, run_id)
            run.status, run.owner = status, owner
            run.finished_at = None if status == "queued" else utcnow()
        return self.get_run(run_id)

    def heartbeat(self, run_id: int, owner: str, trial_ids: Sequence[int] = ()) -> bool:
        """Refreshes the heartbeat of the run (if ``owner`` still drives it) and of
        ``trial_ids``; False when another process has taken the run over."""
        now = utcnow()
        with self.transaction() as s:
            done = _rowcount(
                s.execute(
                    update(RunModel)
                    .where(RunModel.id == run_id, RunModel.owner == owner)
                    .values(heartbeat_at=now)
                )
            )
            _touch_trials(s, trial_ids, now)
            return bool(done)

    def save_strategy_state(
        self, run_id: int, state: dict[str, Any] | None, *, owner: str | None = None
    ) -> None:
        """Stores the strategy's state after its last told batch (None clears it); with
        ``owner``, only while that process still drives the run."""
        with self.transaction() as s:
            q = update(RunModel).where(RunModel.id == run_id)
            if owner is not None:
                q = q.where(RunModel.owner == owner)
            s.execute(q.values(strategy_state=state))

    def strategy_state(self, run_id: int) -> dict[str, Any] | None:
        with self.session() as s:
            return s.scalar(select(RunModel.strategy_state).where(RunModel.id == run_id))

    def sweep_runs(self, sweep: str) -> list[RunInfo]:
        """The runs of sweep ``sweep``, oldest first."""
        return sorted(self._runs(RunModel.sweep == sweep), key=lambda r: r.id)

    def set_run_status(
        self, run_id: int, status: str, *, error: str | None = None, owner: str | None = None
    ) -> bool:
        """Sets the run's status (and error); with ``owner``, only while that process still
        drives the run (a process that was taken over leaves the new owner's run alone).
        Returns whether the status was set."""
        with self.transaction() as s:
            run = s.get(RunModel, run_id)
            if run is None:
                raise self._no_run(run_id)
            if owner is not None and run.owner != owner:
                return False
            run.status = status
            run.error = error
            run.finished_at = None if status in ("running", "queued") else utcnow()
            return True

    def _locked(self, s: Session, run_id: int) -> RunModel:
        """The run's row, locked for the transaction.

        Raises:
            StoreError: no such run.
        """
        run = s.execute(
            select(RunModel).where(RunModel.id == run_id).with_for_update()
        ).scalar_one_or_none()
        if run is None:
            raise self._no_run(run_id)
        return run

    def _no_run(self, run_id: int) -> StoreError:
        return NotFoundError(
            f"--run: there is no run {run_id} in {display_url(self.url)}; "
            "`archsearch runs` lists the runs"
        )

    def has_run(self, run_id: int) -> bool:
        """Whether the run exists (without counting its trials, as :meth:`get_run` does)."""
        if not _fits(run_id):
            return False
        with self.session() as s:
            return s.scalar(select(RunModel.id).where(RunModel.id == run_id)) is not None

    def require_run(self, run_id: int) -> None:
        """Checks that the run exists.

        Raises:
            StoreError: no such run.
        """
        if not self.has_run(run_id):
            raise self._no_run(run_id)

    def get_run(self, run_id: int) -> RunInfo:
        """The run ``run_id`` with its trial counts.

        Raises:
            StoreError: no such run.
        """
        runs = self._runs(RunModel.id == run_id) if _fits(run_id) else []
        if not runs:
            raise self._no_run(run_id)
        return runs[0]

    def run_config(self, run_id: int) -> RunConfig:
        """The run's settings alone (:meth:`get_run` also counts its trials: a pass over them).

        Raises:
            StoreError: no such run.
        """
        with self.session() as s:
            run = s.get(RunModel, run_id) if _fits(run_id) else None
            if run is None:
                raise self._no_run(run_id)
            return _config(run)

    def delete_run(self, run_id: int) -> Deleted:
        """Deletes a run with its trials, scores and intermediate values, in one transaction.

        Architectures stay: they are shared by digest, and another run (or a latency
        measurement) may use them, or start using them while this one is deleted; latency
        tables and supernets are never touched either.

        Raises:
            StoreError: no such run.
        """
        if not _fits(run_id):
            raise self._no_run(run_id)
        with self.transaction() as s:
            run = s.get(RunModel, run_id, with_for_update=True)
            if run is None:
                raise self._no_run(run_id)
            trial_ids = select(TrialModel.id).where(TrialModel.run_id == run_id)
            archs = s.scalar(
                select(func.count(func.distinct(TrialModel.architecture_id))).where(
                    TrialModel.run_id == run_id
                )
            )
            scores = _rowcount(
                s.execute(delete(ScoreModel).where(ScoreModel.trial_id.in_(trial_ids)))
            )
            s.execute(delete(TrialColumnsModel).where(TrialColumnsModel.run_id == run_id))
            s.execute(
                delete(TrialIntermediateModel).where(
                    TrialIntermediateModel.trial_id.in_(trial_ids)
                )
            )
            trials = _rowcount(s.execute(delete(TrialModel).where(TrialModel.run_id == run_id)))
            s.delete(run)
            return Deleted(trials, scores, int(archs or 0))

    def list_runs(self) -> list[RunInfo]:
        """Every run, newest first."""
        return self._runs(None)

    def _runs(self, condition: Any) -> list[RunInfo]:
        with self.session() as s:
            q = select(RunModel).order_by(RunModel.id.desc())
            if condition is not None:
                q = q.where(condition)
            runs = list(s.scalars(q))
            counts: dict[tuple[int, str], int] = {}
            if runs:
                rows = s.execute(
                    select(TrialModel.run_id, TrialModel.state, func.count())
                    .where(TrialModel.run_id.in_([r.id for r in runs]))
                    .group_by(TrialModel.run_id, TrialModel.state)
                )
                counts = {(rid, state): n for rid, state, n in rows}
            return [
                RunInfo(
                    id=r.id,
                    config=_config(r),
                    status=r.status,
                    created_at=r.created_at,
                    finished_at=r.finished_at,
                    host=r.host,
                    version=r.version,
                    error=r.error,
                    n_complete=counts.get((r.id, "complete"), 0),
                    n_failed=counts.get((r.id, "failed"), 0),
                    n_pruned=counts.get((r.id, "pruned"), 0),
                    n_active=sum(counts.get((r.id, st), 0) for st in ACTIVE_STATES),
                    owner=r.owner,
                    heartbeat_at=r.heartbeat_at,
                    sweep=r.sweep,
                    sweep_point=r.sweep_point,
                )
                for r in runs
            ]

    def add_trials(
        self, run_id: int, records: Sequence[TrialRecord], *, owner: str | None = None
    ) -> list[int]:
        """Stores finished trials (architectures upserted by digest) in one transaction.

        A candidate the run already holds as ``waiting``/``running`` (queued by a previous
        owner, see :meth:`claim_run`) is finished in place, keeping its number; the others get
        new numbers, consecutive within the run. Returns the trials' numbers.

        Raises:
            RunTakenOver: ``owner`` is given and no longer drives the run; nothing is stored.
        """
        if not records:
            return []
        with self.transaction() as s:
            self._lock_run(s, run_id, owner)
            ids = self._upsert_architectures(s, [(r.arch, r.cost) for r in records])
            open_ = self._open_trials(s, run_id, list(ids.values()))
            number = self._next_number(s, run_id)
            worker = worker_id()
            now = utcnow()
            out: list[int] = []
            done: list[tuple[TrialModel, TrialRecord]] = []
            for r in records:
                t = open_.get(ids[r.arch.digest])
                if t is None:
                    t = TrialModel(
                        run_id=run_id, number=number, architecture_id=ids[r.arch.digest]
                    )
                    number += 1
                    s.add(t)
                else:
                    t.attempts += 1
                t.state = r.state
                t.started_at = r.started_at or now
                t.finished_at = r.finished_at or now
                t.heartbeat_at = r.finished_at or now
                t.worker = r.worker or worker
                t.device = device_label(r.device)
                t.error = r.error
                t.scores = [
                    ScoreModel(run_id=run_id, metric=m, value=_to_db(v))
                    for m, v in sorted(r.values.items())
                ]
                out.append(t.number)
                if r.state == "complete":
                    done.append((t, r))
            s.flush()  # the new trials' ids
            columns.append(
                s,
                run_id,
                [columns.Completed(t.id, t.architecture_id, r.cost, r.values) for t, r in done],
            )
            return out

    def queue_trials(
        self,
        run_id: int,
        candidates: Sequence[tuple[Architecture, Cost]],
        *,
        worker: str | None = None,
        owner: str | None = None,
    ) -> list[int]:
        """Records candidates about to be evaluated; returns their trial ids.

        With ``worker`` the trials are ``running`` on it (attempt counted, heartbeat set);
        without, ``waiting`` for a worker to :meth:`begin_trial`. A candidate already held
        ``waiting``/``running`` keeps its row and number.

        Raises:
            RunTakenOver: ``owner`` is given and no longer drives the run.
        """
        if not candidates:
            return []
        with self.transaction() as s:
            self._lock_run(s, run_id, owner)
            ids = self._upsert_architectures(s, candidates)
            open_ = self._open_trials(s, run_id, list(ids.values()))
            number = self._next_number(s, run_id)
            now = utcnow()
            rows: list[TrialModel] = []
            for arch, _ in candidates:
                t = open_.get(ids[arch.digest])
                if t is None:
                    t = TrialModel(
                        run_id=run_id, number=number, architecture_id=ids[arch.digest], attempts=0
                    )
                    number += 1
                    s.add(t)
                t.state = "running" if worker else "waiting"
                t.worker = worker
                t.error = None
                t.heartbeat_at = now
                if worker:
                    t.attempts += 1
                    t.started_at = now
                rows.append(t)
            s.flush()
            return [t.id for t in rows]

    def begin_trials(self, trial_ids: Sequence[int], worker: str) -> list[bool]:
        """A worker starts evaluating queued trials (attempt counted, heartbeat set), in one
        transaction; False for a trial already finished (a retried task whose first attempt
        got through), which the worker must not evaluate again."""
        now = utcnow()
        with self.transaction() as s:
            rows = s.scalars(
                select(TrialModel).where(TrialModel.id.in_(list(trial_ids))).with_for_update()
            )
            by_id = {t.id: t for t in rows}
            out = []
            for tid in trial_ids:
                t = by_id.get(tid)
                if t is None or t.state not in ACTIVE_STATES:
                    out.append(False)
                    continue
                t.state, t.worker, t.attempts = "running", worker, t.attempts + 1
                t.started_at = t.heartbeat_at = now
                out.append(True)
            return out

    def begin_trial(self, trial_id: int, worker: str) -> bool:
        """:meth:`begin_trials` for one trial."""
        return self.begin_trials([trial_id], worker)[0]

    def heartbeat_trials(self, trial_ids: Sequence[int]) -> None:
        """Refreshes the heartbeat of running trials (called by the workers evaluating them)."""
        with self.transaction() as s:
            _touch_trials(s, trial_ids, utcnow())

    def release_trial(self, trial_id: int, *, owner: str | None = None) -> None:
        """Puts a trial whose evaluation was interrupted back to ``waiting`` (with ``owner``:
        only while that process still drives its run)."""
        with self.transaction() as s:
            q = update(TrialModel).where(
                TrialModel.id == trial_id, TrialModel.state.in_(ACTIVE_STATES)
            )
            if owner is not None:
                q = q.where(
                    TrialModel.run_id.in_(select(RunModel.id).where(RunModel.owner == owner))
                )
            s.execute(q.values(state="waiting", worker=None))

    def finish_trials(
        self,
        outcomes: Sequence[tuple[int, Mapping[str, float], str, str | None]],
        *,
        owner: str | None = None,
        device: str | None = None,
    ) -> list[bool]:
        """Stores ``(trial id, scores, state, error)`` of finished trials in one transaction;
        False (nothing written) for a trial finished already, so that a retried evaluation
        never stores a trial twice. ``device``: what the scores were computed on.

        Raises:
            RunTakenOver: ``owner`` is given and no longer drives a trial's run (the new owner
                evaluates the trial again); nothing is stored.
        """
        for _, _, state, _ in outcomes:
            if state not in FINISHED_STATES:
                raise ValueError(f"state {state!r} is not one of {FINISHED_STATES}")
        now = utcnow()
        with self.transaction() as s:
            ids = [o[0] for o in outcomes]
            # Every run first, in order: the lock serialises the runs' columns (and, with
            # ``owner``, checks ownership) without deadlocks between finishing workers.
            runs = s.scalars(select(TrialModel.run_id).where(TrialModel.id.in_(ids))).all()
            for run_id in sorted(set(runs)):
                self._lock_run(s, run_id, owner)
            rows = s.scalars(select(TrialModel).where(TrialModel.id.in_(ids)).with_for_update())
            by_id = {t.id: t for t in rows}
            out = []
            done: list[tuple[TrialModel, Mapping[str, float]]] = []
            for tid, values, state, error in outcomes:
                t = by_id.get(tid)
                if t is None or t.state in FINISHED_STATES:
                    out.append(False)
                    continue
                t.state, t.error = state, error
                t.device = device_label(device)
                t.finished_at = t.heartbeat_at = now
                t.started_at = t.started_at or now
                t.scores = [
                    ScoreModel(run_id=t.run_id, metric=m, value=_to_db(v))
                    for m, v in sorted(values.items())
                ]
                out.append(True)
                if state == "complete":
                    done.append((t, values))
            if done:
                A = ArchitectureModel
                costs = {
                    a.id: Cost(a.params, a.macs, a.activations)
                    for a in s.execute(
                        select(A.id, A.params, A.macs, A.activations).where(
                            A.id.in_({t.architecture_id for t, _ in done})
                        )
                    )
                }
                for run_id in sorted({t.run_id for t, _ in done}):
                    columns.append(
                        s,
                        run_id,
                        [
                            columns.Completed(t.id, t.architecture_id, costs[t.architecture_id], v)
                            for t, v in done
                            if t.run_id == run_id
                        ],
                    )
            return out

    def finish_trial(
        self,
        trial_id: int,
        values: Mapping[str, float],
        *,
        state: str = "complete",
        error: str | None = None,
        owner: str | None = None,
        device: str | None = None,
    ) -> bool:
        """:meth:`finish_trials` for one trial."""
        return self.finish_trials([(trial_id, values, state, error)], owner=owner, device=device)[
            0
        ]

    def trial_state(self, trial_id: int) -> tuple[str, dict[str, float], str | None]:
        """A trial's state, scores and error."""
        with self.session() as s:
            t = s.get(TrialModel, trial_id)
            if t is None:
                raise StoreError(f"there is no trial with id {trial_id}")
            values = {sc.metric: _from_db(sc.value) for sc in t.scores}
            return t.state, values, t.error

    def add_intermediate(self, trial_id: int, step: int, values: Mapping[str, float]) -> None:
        """Stores the values a trial reported at ``step`` (a step reported again is replaced,
        e.g. by a retried attempt)."""
        with self.transaction() as s:
            s.execute(
                delete(TrialIntermediateModel).where(
                    TrialIntermediateModel.trial_id == trial_id,
                    TrialIntermediateModel.step == step,
                )
            )
            s.add_all(
                TrialIntermediateModel(trial_id=trial_id, step=step, metric=m, value=_to_db(v))
                for m, v in sorted(values.items())
            )

    def intermediates(self, run_id: int) -> dict[int, list[tuple[int, dict[str, float]]]]:
        """Every intermediate value of a run: trial number -> [(step, values)] by step."""
        with self.session() as s:
            rows = s.execute(
                select(
                    TrialModel.number,
                    TrialIntermediateModel.step,
                    TrialIntermediateModel.metric,
                    TrialIntermediateModel.value,
                )
                .join(TrialModel, TrialIntermediateModel.trial_id == TrialModel.id)
                .where(TrialModel.run_id == run_id)
                .order_by(TrialModel.number, TrialIntermediateModel.step)
            )
            out: dict[int, dict[int, dict[str, float]]] = {}
            for number, step, metric, value in rows:
                out.setdefault(number, {}).setdefault(step, {})[metric] = _from_db(value)
            return {n: sorted(steps.items()) for n, steps in out.items()}

    def trial_attempts(self, run_id: int) -> dict[str, int]:
        """digest -> attempts of each trial of the run."""
        with self.session() as s:
            rows = s.execute(
                select(ArchitectureModel.digest, TrialModel.attempts)
                .join(TrialModel, TrialModel.architecture_id == ArchitectureModel.id)
                .where(TrialModel.run_id == run_id)
            )
            return {d: int(a) for d, a in rows}

    def _lock_run(self, s: Session, run_id: int, owner: str | None = None) -> None:
        """Locks the run's row for the transaction (serialising numbering per run; a no-op on
        SQLite, whose write lock is held already) and, with ``owner``, checks that this
        process still drives the run.

        Raises:
            RunTakenOver: another process has claimed the run (``run --resume --takeover``).
        """
        locked = s.execute(
            select(RunModel.id, RunModel.owner).where(RunModel.id == run_id).with_for_update()
        ).first()
        if locked is None:
            raise self._no_run(run_id)
        if owner is not None and locked.owner != owner:
            raise RunTakenOver(run_id, locked.owner)

    @staticmethod
    def _next_number(s: Session, run_id: int) -> int:
        last = s.scalar(select(func.max(TrialModel.number)).where(TrialModel.run_id == run_id))
        return 0 if last is None else last + 1

    @staticmethod
    def _open_trials(s: Session, run_id: int, arch_ids: list[int]) -> dict[int, TrialModel]:
        """The run's ``waiting``/``running`` trials of these architectures, by architecture."""
        rows = s.scalars(
            select(TrialModel).where(
                TrialModel.run_id == run_id,
                TrialModel.architecture_id.in_(arch_ids),
                TrialModel.state.in_(ACTIVE_STATES),
            )
        )
        return {t.architecture_id: t for t in rows}

    def run_devices(self, run_id: int) -> dict[str, int]:
        """How many of the run's finished trials were scored on each device (trials whose
        scores need no device choice are left out)."""
        T = TrialModel
        with self.session() as s:
            rows = s.execute(
                select(T.device, func.count())
                .where(T.run_id == run_id, T.device.is_not(None))
                .group_by(T.device)
                .order_by(T.device)
            ).all()
        return {str(d): int(n) for d, n in rows}

    def trials(self, run_id: int, *, states: Sequence[str] | None = None) -> list[StoredTrial]:
        """The run's trials in number order, with costs and scores."""
        with self.session() as s:
            q = (
                select(TrialModel, ArchitectureModel)
                .join(ArchitectureModel, TrialModel.architecture_id == ArchitectureModel.id)
                .where(TrialModel.run_id == run_id)
                .order_by(TrialModel.number)
            )
            if states is not None:
                q = q.where(TrialModel.state.in_(states))
            rows = s.execute(q).all()
            scores: dict[int, dict[str, float]] = {}
            ids = [t.id for t, _ in rows]
            for chunk in range(0, len(ids), 5000):
                part = ids[chunk : chunk + 5000]
                for tid, metric, value in s.execute(
                    select(ScoreModel.trial_id, ScoreModel.metric, ScoreModel.value).where(
                        ScoreModel.trial_id.in_(part)
                    )
                ):
                    scores.setdefault(tid, {})[metric] = _from_db(value)
            return [
                StoredTrial(
                    number=t.number,
                    digest=a.digest,
                    spec=a.spec,
                    state=t.state,
                    cost=Cost(a.params, a.macs, a.activations),
                    values=scores.get(t.id, {}),
                    device=t.device,
                )
                for t, a in rows
            ]

    def metrics(self, run_id: int) -> list[str]:
        """Names of the scores stored for a run's trials.

        A loose index scan: one index lookup per distinct metric (the smallest name above the
        last), not a pass over the run's scores.
        """
        self.require_run(run_id)
        S = ScoreModel
        found = (
            select(func.min(S.metric).label("metric"))
            .where(S.run_id == run_id)
            .cte("found", recursive=True)
        )
        after = (
            select(func.min(S.metric))
            .where(S.run_id == run_id, S.metric > found.c.metric)
            .scalar_subquery()
        )
        found = found.union_all(select(after).where(found.c.metric.is_not(None)))
        with self.session() as s:
            names = s.scalars(select(found.c.metric).where(found.c.metric.is_not(None)))
            return sorted(names)

    def results(
        self,
        run_id: int,
        *,
        metrics: Sequence[str] = (),
        where: Expr | None = None,
        times: bool = False,
        trial_ids: Sequence[int] | None = None,
        architecture_ids: Sequence[int] | None = None,
    ) -> list[dict[str, Any]]:
        """The run's complete trials as rows: trial, digest, costs and the requested metrics
        (with ``times``, also ``finished_at``, a naive UTC datetime), in trial order.

        ``where`` is compiled into SQL over the cost columns and the metrics; ``trial_ids``
        and ``architecture_ids`` keep only those trials (store ids, e.g. a front's).

        Raises:
            UserError: a metric that no trial of the run has (the message lists them).
        """
        stored = self.metrics(run_id)  # raises for a missing run
        known = [*COST_NAMES, *stored]
        wanted = [m for m in metrics if m not in COST_NAMES]
        if where is not None:
            where.check_names(known, "--where")
            wanted += [n for n in sorted(where.names) if n not in COST_NAMES]
        for m in wanted:
            if m not in stored:
                raise UserError(
                    f"metric {m!r} is not stored for run {run_id}; choose from {', '.join(known)}"
                )
        T, A = TrialModel, ArchitectureModel
        columns: dict[str, Any] = {
            "params": A.params,
            "macs": A.macs,
            "activations": A.activations,
        }
        q = (
            select(T.number, A.digest, A.params, A.macs, A.activations)
            .join(A, T.architecture_id == A.id)
            .where(T.run_id == run_id, T.state == "complete")
            .order_by(T.number)
        )
        if times:
            q = q.add_columns(T.finished_at)
        first = 6 if times else 5
        for i, m in enumerate(dict.fromkeys(wanted)):
            sc = aliased(ScoreModel, name=f"s{i}")
            q = q.outerjoin(sc, and_(sc.trial_id == T.id, sc.metric == m))
            q = q.add_columns(sc.value.label(f"m{i}"))
            columns[m] = sc.value
        if where is not None:
            q = q.where(where.to_sql(columns))
        parts = [q]
        for column, only in ((T.id, trial_ids), (T.architecture_id, architecture_ids)):
            if only is not None:  # bound parameters in chunks: SQLite takes 32,766 at most
                only = sorted(set(only))
                parts = [
                    p.where(column.in_(only[i : i + _CHUNK]))
                    for p in parts
                    for i in range(0, len(only), _CHUNK)
                ]
        out = []
        with self.session() as s:
            for part in parts:
                for row in s.execute(part):
                    rec: dict[str, Any] = {
                        "trial": row[0],
                        "digest": row[1],
                        "params": row[2],
                        "macs": row[3],
                        "activations": row[4],
                    }
                    if times:
                        rec["finished_at"] = row[5]  # type: ignore[misc]
                    for i, m in enumerate(dict.fromkeys(wanted)):
                        rec[m] = _from_db(row[first + i])  # type: ignore[arg-type]
                    out.append(rec)
        out.sort(key=lambda r: int(r["trial"]))
        return out

    def results_across(
        self,
        run_ids: Sequence[int],
        *,
        metrics: Sequence[str] = (),
        filters: Mapping[int, Expr | None] | None = None,
        architecture_ids: Sequence[int] | None = None,
    ) -> list[dict[str, Any]]:
        """The complete trials of several runs, one row per architecture (deduplicated by
        digest): its costs and each of ``metrics`` from the newest of the runs that measured
        it (NaN where none did). ``run`` is the newest run the row's values come from, with its
        ``trial`` number; ``runs`` names every run that holds the architecture.

        ``filters`` maps a run to a filter applied (in SQL) to that run's trials alone;
        ``architecture_ids`` keeps only those architectures (store ids).

        Raises:
            UserError: a run that does not exist, or a metric that none of the runs has.
        """
        ids = sorted(set(run_ids))
        stored = {r: set(self.metrics(r)) for r in ids}  # raises for a missing run
        known = set(COST_NAMES).union(*stored.values())
        for m in metrics:
            if m not in known:
                raise UserError(
                    f"metric {m!r} is not stored for runs {', '.join(map(str, ids))}; choose "
                    f"from {', '.join(sorted(known))}"
                )
        merged: dict[str, dict[str, Any]] = {}
        for run_id in ids:  # oldest first: a newer run's values replace an older one's
            want = [m for m in dict.fromkeys(metrics) if m in stored[run_id]]
            where = (filters or {}).get(run_id)
            rows = self.results(
                run_id, metrics=want, where=where, architecture_ids=architecture_ids
            )
            for row in rows:
                rec = merged.setdefault(
                    row["digest"],
                    {k: row[k] for k in ("digest", *COST_NAMES)} | {"runs": []},
                )
                rec["runs"].append(run_id)
                for m in want:
                    if not math.isnan(row[m]):
                        rec[m] = row[m]
                        rec["run"], rec["trial"] = run_id, row["trial"]
                if "run" not in rec:
                    rec["run"], rec["trial"] = run_id, row["trial"]
        out = []
        for rec in merged.values():
            for m in metrics:
                rec.setdefault(m, math.nan)
            rec["runs"] = ",".join(map(str, rec["runs"]))
            out.append(rec)
        return out


def _config(run: RunModel) -> RunConfig:
    return RunConfig(**{k: getattr(run, k) for k in RunConfig.__dataclass_fields__})


_CHUNK = 10_000
"""Ids bound per IN list."""


def _touch_trials(s: Session, trial_ids: Sequence[int], now: datetime) -> None:
    """Refreshes the heartbeat of those of ``trial_ids`` still running."""
    if trial_ids:
        s.execute(
            update(TrialModel)
            .where(TrialModel.id.in_(list(trial_ids)), TrialModel.state == "running")
            .values(heartbeat_at=now)
        )
