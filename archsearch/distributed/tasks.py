"""Evaluating candidates as Ray tasks: each worker writes its trials to the run's database.

The driver (:func:`archsearch.search.optimize` with :class:`RayTasks`) records a batch's new
candidates as ``waiting`` trials, then submits Ray tasks: cheap evaluations in chunks of
several candidates per task (one task per candidate would pay Ray's scheduling cost for each),
expensive ones one candidate per task with the requested CPUs/GPUs. A worker marks its trials
``running`` (:meth:`~archsearch.db.Store.begin_trials`, which counts the attempt), keeps their
heartbeat fresh while it evaluates, and stores their scores
(:meth:`~archsearch.db.Store.finish_trials`). The driver tells the strategy what came back.

Worker faults: a task whose worker process dies is retried by Ray, at most ``retries`` times;
the retry skips trials the dead attempt had finished (``begin_trials`` says so), so no trial is
stored twice. After the last retry the trials still unfinished are stored ``failed`` with the
reason.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from archsearch.cost import count
from archsearch.db import Store, worker_id
from archsearch.db.heartbeat import HEARTBEAT_INTERVAL
from archsearch.errors import first_line
from archsearch.solvers import Result
from archsearch.spec import Architecture

if TYPE_CHECKING:
    from archsearch.evaluators import Evaluator
    from archsearch.search import Beat, Search

Outcome = tuple[str, dict[str, float], str | None]
"""``(state, scores, error)`` of one trial, as a worker returns it."""

_STORES: dict[str, Store] = {}


def worker_store(url: str) -> Store:
    """One :class:`Store` per database per worker process (connections are pooled)."""
    if url not in _STORES:
        _STORES[url] = Store(url)
    return _STORES[url]


def evaluate_trials(
    url: str, trial_ids: Sequence[int], specs: Sequence[str], evaluators: Sequence[Evaluator]
) -> list[Outcome]:
    """Runs on a worker: begins, evaluates and finishes the given trials of the database at
    ``url``; returns each one's outcome (read back from the database for a trial an earlier
    attempt finished)."""
    from archsearch.search import devices_of, run_evaluators

    store = worker_store(url)
    for ev in evaluators:
        ev.bind(store)
    started = store.begin_trials(trial_ids, worker_id())
    todo = [i for i, ok in enumerate(started) if ok]
    out: dict[int, Outcome] = {}
    if todo:
        stop = threading.Event()
        beat = threading.Thread(
            target=beat_trials, args=(store, [trial_ids[i] for i in todo], stop), daemon=True
        )
        beat.start()
        try:
            archs = [Architecture.from_json(specs[i]) for i in todo]
            scores, errors = run_evaluators(evaluators, archs)
        finally:
            stop.set()
        outcomes = [
            (trial_ids[i], scores[k], "failed" if errors[k] else "complete", errors[k])
            for k, i in enumerate(todo)
        ]
        store.finish_trials(outcomes, device=devices_of(evaluators))
        for k, i in enumerate(todo):
            out[i] = (outcomes[k][2], scores[k], errors[k])
    for i, ok in enumerate(started):
        if not ok:
            state, values, error = store.trial_state(trial_ids[i])
            out[i] = (state, values, error)
    return [out[i] for i in range(len(trial_ids))]


def beat_trials(store: Store, trial_ids: list[int], stop: threading.Event) -> None:
    """Refreshes the trials' heartbeat every interval until ``stop`` is set (a worker's
    thread)."""
    while not stop.wait(HEARTBEAT_INTERVAL):
        with contextlib.suppress(Exception):  # the next beat tries again
            store.heartbeat_trials(trial_ids)


class RayTasks:
    """An :class:`~archsearch.search.Executor` that evaluates on a Ray cluster.

    Args:
        url: The database URL as workers use it (see
            :func:`archsearch.distributed.cluster.worker_url`).
        max_concurrent: Tasks in flight at once (None: as many as the cluster schedules).
        chunk: Candidates per task for cheap evaluations (None: spread a batch over the
            cluster's CPUs, at most 16 per task).
        cpus, gpus: Resources each task requests.
        retries: Times a task is retried after its worker died.
    """

    def __init__(
        self,
        url: str,
        *,
        max_concurrent: int | None = None,
        chunk: int | None = None,
        cpus: float = 1.0,
        gpus: float = 0.0,
        retries: int = 2,
    ) -> None:
        self.url = url
        self.max_concurrent = max_concurrent
        self.chunk = chunk
        self.cpus = cpus
        self.gpus = gpus
        self.retries = retries
        self._evaluators: Any = None
        self._remote: Any = None
        self._cpus = 1

    def evaluate(
        self, search: Search, store: Store, run_id: int, archs: Sequence[Architecture], beat: Beat
    ) -> list[Result]:
        import ray

        if self._remote is None:
            # The evaluators (with their datasets) go to the object store once per run.
            self._evaluators = ray.put(list(search.evaluators))
            self._remote = ray.remote(evaluate_trials).options(
                num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.retries
            )
            self._cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        costs = [count(a) for a in archs]
        ids = store.queue_trials(run_id, list(zip(archs, costs, strict=True)), owner=beat.owner)
        if all(e.cheap for e in search.evaluators):
            size = self.chunk or min(16, max(1, math.ceil(len(archs) / self._cpus)))
        else:
            size = 1
        parts = [list(range(i, min(i + size, len(archs)))) for i in range(0, len(archs), size)]
        outcomes: list[Outcome | None] = [None] * len(archs)
        pending: dict[Any, list[int]] = {}
        queue = list(parts)
        limit = self.max_concurrent or len(parts)
        while queue or pending:
            while queue and len(pending) < limit:
                part = queue.pop(0)
                ref = self._remote.remote(
                    self.url,
                    [ids[i] for i in part],
                    [archs[i].to_json() for i in part],
                    self._evaluators,
                )
                pending[ref] = part
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                part = pending.pop(ref)
                try:
                    got = ray.get(ref)
                except Exception as e:  # the worker died after every retry, or the task broke
                    reason = f"{type(e).__name__}: {first_line(e)}"
                    failed: list[tuple[int, dict[str, float], str, str | None]] = [
                        (ids[i], {}, "failed", f"ray task: {reason}") for i in part
                    ]
                    store.finish_trials(failed)
                    got = []
                    for i in part:  # a trial an attempt finished keeps that attempt's result
                        state, values, error = store.trial_state(ids[i])
                        got.append((state, values, error))
                for i, outcome in zip(part, got, strict=True):
                    outcomes[i] = outcome
        results = []
        for arch, cost, outcome in zip(archs, costs, outcomes, strict=True):
            assert outcome is not None
            state, values, _ = outcome
            merged = {k: float(v) for k, v in cost.as_dict().items()}
            merged.update(values)
            told = "complete" if state == "complete" else "failed"
            results.append(Result(arch, merged, told))  # type: ignore[arg-type]
        return results
