"""Where a batch's candidates are evaluated and stored: :class:`InProcess` here (Ray's
executors are in :mod:`archsearch.distributed`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from archsearch.cost import count
from archsearch.db import (
    RunTakenOver,
    Store,
    TrialRecord,
    worker_id,
)
from archsearch.db.models import utcnow
from archsearch.evaluators import (
    Evaluator,
)
from archsearch.solvers import (
    Result,
)
from archsearch.spec import Architecture

if TYPE_CHECKING:
    from archsearch.search.config import Search


class Executor(Protocol):
    """Where a batch's new candidates are evaluated and stored: in this process
    (:class:`InProcess`), or on a Ray cluster (:class:`archsearch.distributed.RayTasks`).

    The driver calls :meth:`evaluate` with candidates the run has not finished yet; the
    executor stores each one's trial (the run's numbering follows the order given) and returns
    one :class:`Result` per candidate, in order.
    """

    def evaluate(
        self, search: Search, store: Store, run_id: int, archs: Sequence[Architecture], beat: Beat
    ) -> list[Result]: ...


class Beat(Protocol):
    """The driver's heartbeat, as an executor sees it: the trials it evaluates right now, and
    the owner whose writes the store accepts (see :class:`archsearch.db.RunTakenOver`)."""

    trials: set[int]
    owner: str


FLUSH_SECONDS = 2.0
"""Cheap scores are stored at least this often (and on Ctrl-C or SIGTERM), so that a crash
loses seconds of work, not a batch."""


CHUNK_SECONDS = 0.05
"""Cheap scores are evaluated in chunks that grow (up to 256 candidates) while a chunk takes
less than this: fast scores keep their batched evaluation, and an interruption loses at most
the chunk in flight (one candidate of a slower score)."""


class InProcess:
    """Evaluates in the driver's process.

    Cheap scores are evaluated in chunks that grow while they stay short (so fast scores keep
    their batched evaluation) and stored at least every :data:`FLUSH_SECONDS`; on an
    interruption the chunks already evaluated are stored before it propagates. Expensive ones
    are stored one trial at a time, recorded ``running`` (with the heartbeat) while they are
    evaluated, so that an interruption loses at most the trial being evaluated.
    """

    def __init__(self, *, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.flush_seconds = flush_seconds

    def evaluate(
        self, search: Search, store: Store, run_id: int, archs: Sequence[Architecture], beat: Beat
    ) -> list[Result]:
        if all(e.cheap for e in search.evaluators):
            return self._cheap(search, store, run_id, archs, beat.owner)
        out: list[Result] = []
        for arch in archs:
            (trial,) = store.queue_trials(
                run_id, [(arch, count(arch))], worker=worker_id(), owner=beat.owner
            )
            beat.trials.add(trial)
            try:
                (result,), (record,) = _evaluate(search, [arch])
            except BaseException:
                # back in the queue: a resume evaluates it again
                store.release_trial(trial, owner=beat.owner)
                raise
            finally:
                beat.trials.discard(trial)
            store.finish_trial(
                trial,
                record.values,
                state=record.state,
                error=record.error,
                owner=beat.owner,
                device=record.device,
            )
            out.append(result)
        return out

    def _cheap(
        self,
        search: Search,
        store: Store,
        run_id: int,
        archs: Sequence[Architecture],
        owner: str,
    ) -> list[Result]:
        results: list[Result] = []
        pending: list[TrialRecord] = []
        last_flush = time.monotonic()
        size, i = 1, 0
        try:
            while i < len(archs):
                chunk = archs[i : i + size]
                t0 = time.monotonic()
                done, records = _evaluate(search, chunk)
                results += done
                pending += records
                i += len(chunk)
                took = time.monotonic() - t0
                # A chunk in flight is lost to an interruption: keep it under CHUNK_SECONDS.
                size = min(size * 2, 256) if took < CHUNK_SECONDS else max(1, size // 2)
                if time.monotonic() - last_flush >= self.flush_seconds and i < len(archs):
                    store.add_trials(run_id, pending, owner=owner)
                    pending, last_flush = [], time.monotonic()
        except RunTakenOver:
            pending = []  # the run is another process's now
            raise
        finally:
            # On Ctrl-C or SIGTERM too: what was evaluated is kept (a resume skips it).
            if pending:
                store.add_trials(run_id, pending, owner=owner)
        return results


def _evaluate(
    search: Search, archs: Sequence[Architecture]
) -> tuple[list[Result], list[TrialRecord]]:
    """Scores candidates with every evaluator: their results and the trial rows to store."""
    costs = [count(a) for a in archs]
    started = utcnow()
    scores, errors = run_evaluators(search.evaluators, archs)
    finished = utcnow()
    worker = worker_id()
    device = devices_of(search.evaluators)
    results: list[Result] = []
    records: list[TrialRecord] = []
    for k, arch in enumerate(archs):
        state = "failed" if errors[k] else "complete"
        values = {key: float(v) for key, v in costs[k].as_dict().items()}
        values.update(scores[k])
        results.append(Result(arch, values, state))  # type: ignore[arg-type]
        records.append(
            TrialRecord(
                arch,
                costs[k],
                scores[k],
                state=state,
                error=errors[k],
                started_at=started,
                finished_at=finished,
                worker=worker,
                device=device,
            )
        )
    return results, records


def devices_of(evaluators: Sequence[Evaluator]) -> str | None:
    """The devices the evaluators compute on, as stored with each trial (None: no choice)."""
    found = dict.fromkeys(d for ev in evaluators if (d := ev.device_used()) is not None)
    return ", ".join(found) or None


def run_evaluators(
    evaluators: Sequence[Evaluator], archs: Sequence[Architecture]
) -> tuple[list[dict[str, float]], list[str | None]]:
    """Every evaluator on every architecture; a failure is isolated to its architecture."""
    scores: list[dict[str, float]] = [{} for _ in archs]
    errors: list[str | None] = [None] * len(archs)
    for ev in sorted(evaluators, key=lambda e: not e.cheap):
        live = [i for i in range(len(archs)) if errors[i] is None]
        try:
            out = ev.evaluate([archs[i] for i in live]) if ev.cheap else None
        except Exception:
            out = None
        if out is None:
            out = []
            for i in live:
                try:
                    out.append(ev.evaluate([archs[i]])[0])
                except Exception as e:
                    errors[i] = f"{ev.name}: {type(e).__name__}: {e}"
                    out.append({})
        for i, vals in zip(live, out, strict=True):
            scores[i].update({k: float(v) for k, v in vals.items()})
    return scores, errors
