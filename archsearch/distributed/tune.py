"""Ray Tune as the evaluation engine: any archsearch strategy as a Tune ``Searcher``.

For expensive evaluations (training): each new candidate becomes one Tune trial with the
requested CPUs/GPUs, so Tune spreads them over the cluster, retries trials whose worker died
(``FailureConfig``), and a scheduler (ASHA) can stop a bad candidate early on the intermediate
results it reports (held-out accuracy after each epoch), which are stored as well.

:class:`StrategySearcher` is a thin adapter over ask/tell (after Ray's
``tune/search/searcher.py`` contract): ``suggest`` hands out the candidates of one asked batch,
one per Tune trial, and returns None (wait) until every result of the batch is back;
``on_trial_complete`` collects them and tells the strategy the whole batch, in the asked order.
So the strategy sees exactly what it would see in-process, and stays deterministic under its
seed whatever order Tune finishes trials in. The database stays the system of record: Tune's
own experiment folder is scratch space, and a run is resumed from the database
(:func:`tune_search` with ``run_id``), never with ``Tuner.restore``.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ray import tune
from ray.tune.search import Searcher

from archsearch.cost import count
from archsearch.db import FINISHED_STATES, Claim, Store, StoredTrial, worker_id
from archsearch.db.heartbeat import STALE_AFTER, Heartbeat
from archsearch.distributed.tasks import beat_trials, worker_store
from archsearch.errors import UserError
from archsearch.solvers import Result
from archsearch.spec import Architecture

if TYPE_CHECKING:
    from archsearch.evaluators import Evaluator
    from archsearch.search import Outcome, Progress, Search

SCHEDULERS = ("asha",)
FINISHED: str = Searcher.FINISHED
"""What ``suggest`` returns when the strategy has no more candidates."""


class StrategySearcher(Searcher):  # type: ignore[misc]
    """A Ray Tune ``Searcher`` that asks an archsearch strategy for candidates.

    Created by :func:`tune_search`, which owns the run; Tune calls :meth:`suggest` when it has
    room for a trial and :meth:`on_trial_complete` when one ends (finished, failed for good,
    or stopped by the scheduler).
    """

    def __init__(
        self,
        driver: _Driver,
        *,
        metric: str,
        mode: str,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self.driver = driver

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its searcher with the experiment state, for Tuner.restore; archsearch
        # resumes from the database instead, so the driver (with its connections) stays out.
        return {k: v for k, v in self.__dict__.items() if k != "driver"}

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the database holds the run (see the module)."""

    def restore(self, checkpoint_path: str) -> None:
        raise UserError("resume archsearch runs with `archsearch run --resume`, not Tune")

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        try:
            return self.driver.suggest(trial_id)
        except BaseException as e:  # Tune would swallow it: stop, and re-raise after fit()
            self.driver.error = e
            return FINISHED

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        try:
            self.driver.complete(trial_id, result, error)
        except BaseException as e:
            self.driver.error = e


class _Driver:
    """The ask/tell bookkeeping behind :class:`StrategySearcher`."""

    def __init__(
        self,
        store: Store,
        search: Search,
        run_id: int | None,
        prior: dict[str, StoredTrial],
        asked: int,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.store = store
        self.search = search
        self.run_id = run_id
        self.prior = prior
        self.asked = asked
        self.on_progress = on_progress
        self.owner = worker_id()
        self.batch: list[Architecture] = []
        self.results: list[Result | None] = []
        self.trial_ids: dict[int, int] = {}  # batch index -> trial id in the database
        self.queue: list[int] = []
        self.by_tune: dict[str, int] = {}
        self.stored = len(prior)
        self.new = 0
        self.best: dict[str, float] = {}
        self.start = time.monotonic()
        self.reason = "trials"
        self.error: BaseException | None = None
        self.beat: Heartbeat | None = None

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        from archsearch.search import _no_candidate, _replayed

        search = self.search
        while True:
            if self.queue:
                i = self.queue.pop(0)
                self.by_tune[trial_id] = i
                return {"trial": self.trial_ids[i], "arch": self.batch[i].to_json()}
            if any(r is None for r in self.results):
                return None  # the rest of the batch is still being evaluated
            limit = search.n_trials
            if limit is not None and self.asked >= limit:
                self.reason = "trials"
                return FINISHED
            if search.time_limit and time.monotonic() - self.start >= search.time_limit:
                self.reason = "time limit"
                return FINISHED
            if self.beat is not None and self.beat.lost:
                raise UserError(
                    f"run {self.run_id} was taken over by another process; this one stops"
                )
            n = search.batch_size if limit is None else min(search.batch_size, limit - self.asked)
            batch = search.strategy.ask(n)
            if not batch:
                if self.run_id is None:
                    raise _no_candidate(search)
                self.reason = "strategy exhausted"
                return FINISHED
            if self.run_id is None:
                self.run_id = self.store.create_run(search.run_config(), owner=self.owner)
            if self.beat is None:
                self.beat = Heartbeat(self.store, self.run_id, self.owner).start()
            self.asked += len(batch)
            self.batch = batch
            self.results = [_replayed(a, self.prior) for a in batch]
            todo = [i for i, r in enumerate(self.results) if r is None]
            if todo:
                ids = self.store.queue_trials(
                    self.run_id, [(batch[i], count(batch[i])) for i in todo]
                )
                self.trial_ids = dict(zip(todo, ids, strict=True))
                self.queue = todo
            else:
                self._tell(fresh=False)

    def complete(self, trial_id: str, result: Mapping[str, Any] | None, error: bool) -> None:
        i = self.by_tune.pop(trial_id, None)
        if i is None:
            return
        tid = self.trial_ids[i]
        state, values, _ = self.store.trial_state(tid)
        if state not in FINISHED_STATES:
            if error:
                self.store.finish_trial(
                    tid, {}, state="failed", error="ray tune: the trial failed after its retries"
                )
            else:  # stopped by the scheduler: keep what it reported last
                names = {m.name for e in self.search.evaluators for m in e.metrics}
                last = {
                    k: float(v)
                    for k, v in (result or {}).items()
                    if k in names and isinstance(v, int | float)
                }
                self.store.finish_trial(tid, last, state="pruned")
            state, values, _ = self.store.trial_state(tid)
        arch = self.batch[i]
        merged = {k: float(v) for k, v in count(arch).as_dict().items()}
        merged.update(values)
        told = "complete" if state == "complete" else "failed"
        self.results[i] = Result(arch, merged, told)  # type: ignore[arg-type]
        self.stored += 1
        self.new += 1
        if all(r is not None for r in self.results):
            self._tell(fresh=True)

    def _tell(self, *, fresh: bool) -> None:
        from archsearch.search import _best

        search = self.search
        told = [r for r in self.results if r is not None]
        search.strategy.tell(told)
        assert self.run_id is not None
        if fresh and len(self.batch) == search.batch_size:
            state = search.strategy.state_dict()
            if state is not None:
                self.store.save_strategy_state(self.run_id, {"asked": self.asked, "state": state})
        for r in told:
            if r.state == "complete":
                _best(self.best, dict(r.values), search.objectives)
        if fresh and self.on_progress is not None:
            from archsearch.search import Progress

            self.on_progress(
                Progress(
                    self.run_id,
                    self.stored,
                    search.n_trials,
                    time.monotonic() - self.start,
                    self.best,
                )
            )


def trainable(config: dict[str, Any], url: str, evaluators: list[Evaluator]) -> None:
    """The Tune trial: evaluates one candidate on a worker, storing it and its intermediate
    results, and reporting them to Tune (a retried trial whose candidate an earlier attempt
    finished reports the stored result)."""
    from archsearch.search import run_evaluators

    store = worker_store(url)
    tid = int(config["trial"])
    arch = Architecture.from_json(config["arch"])
    if not store.begin_trial(tid, worker_id()):
        _, values, _ = store.trial_state(tid)
        tune.report(_finite(values))
        return

    def report(step: int, values: dict[str, float]) -> None:
        store.add_intermediate(tid, step, values)
        tune.report(_finite(values))

    for ev in evaluators:
        ev.bind(store)
        ev.on_report = report
    stop = threading.Event()
    threading.Thread(target=beat_trials, args=(store, [tid], stop), daemon=True).start()
    try:
        (scores,), (error,) = run_evaluators(evaluators, [arch])
    finally:
        stop.set()
    store.finish_trial(tid, scores, state="failed" if error else "complete", error=error)
    tune.report(_finite(scores))


def _finite(values: Mapping[str, float]) -> dict[str, float]:
    """Tune's schedulers compare reported values: NaN/inf become None-free finite floats or
    are left out."""
    return {k: float(v) for k, v in values.items() if math.isfinite(float(v))}


def tune_search(
    store: Store,
    search: Search,
    *,
    url: str,
    run_id: int | None = None,
    max_concurrent: int | None = None,
    scheduler: str | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    retries: int = 2,
    takeover: bool = False,
    stale_after: float = STALE_AFTER,
    on_progress: Callable[[Progress], None] | None = None,
    on_claim: Callable[[Claim], None] | None = None,
) -> Outcome:
    """Runs (or, with ``run_id``, resumes) a search whose candidates are Ray Tune trials.

    The same contract as :func:`archsearch.search.optimize` (claiming, replay, strategy state,
    statuses), with Tune running the evaluations: ``max_concurrent`` trials at once, each with
    ``cpus``/``gpus``, retried ``retries`` times if its worker dies, and stopped early by
    ``scheduler`` (``asha``: asynchronous successive halving on the first objective, which must
    be reported while training: ``accuracy`` or ``loss``).

    Raises:
        UserError: an unknown scheduler, or one that cannot act on the first objective.
    """
    from archsearch.search import Outcome, _best, prepare

    objective = search.objectives[0]
    sched: Any = None
    if scheduler is not None:
        if scheduler not in SCHEDULERS:
            raise UserError(
                f"--scheduler: unknown scheduler {scheduler!r}; choose from "
                f"{', '.join(SCHEDULERS)}"
            )
        train = next((e for e in search.evaluators if e.name == "train"), None)
        if train is None or objective.name not in ("accuracy", "loss"):
            raise UserError(
                f"--scheduler {scheduler}: it stops candidates on intermediate results, which "
                "only training reports; use --score train with --objectives accuracy (or loss) "
                f"first (the first objective is {objective})"
            )
        from ray.tune.schedulers import ASHAScheduler

        recipe: Any = train.recipe  # type: ignore[attr-defined]
        epochs = max(1, math.ceil(float(recipe.epochs)))
        sched = ASHAScheduler(
            time_attr="training_iteration",
            metric=objective.name,
            mode=objective.direction,
            max_t=epochs,
            grace_period=1,
            reduction_factor=2,
        )
    strategy = search.strategy
    prior, asked = prepare(
        store, search, run_id, takeover=takeover, stale_after=stale_after, on_claim=on_claim
    )
    driver = _Driver(store, search, run_id, prior, asked, on_progress)
    for t in prior.values():
        if t.state == "complete":
            _best(driver.best, {**t.cost.as_dict(), **t.values}, search.objectives)
    searcher = StrategySearcher(driver, metric=objective.name, mode=objective.direction)
    evaluators = [e for e in search.evaluators]
    for ev in evaluators:
        ev.on_step = None  # progress bars live in the driver's terminal, not on workers
    resources: dict[str, float] = {"cpu": cpus, "gpu": gpus}
    # Tune's new console output ignores verbose=0; the classic reporter honours it. The
    # progress bar of `archsearch run` shows the run instead.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    tuner = tune.Tuner(
        tune.with_resources(
            tune.with_parameters(trainable, url=url, evaluators=evaluators), resources
        ),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=sched,
            num_samples=-1,
            max_concurrent_trials=max_concurrent,
            time_budget_s=search.time_limit,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"archsearch-{run_id or 'new'}",
            storage_path=tempfile.mkdtemp(prefix="archsearch-tune-"),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=retries),
            log_to_file=True,
        ),
    )
    try:
        tuner.fit()
        if driver.error is not None:
            raise driver.error
    except KeyboardInterrupt:
        if driver.run_id is not None:
            store.set_run_status(driver.run_id, "interrupted")
        raise
    except BaseException as e:
        if driver.run_id is not None:
            store.set_run_status(driver.run_id, "failed", error=f"{type(e).__name__}: {e}")
        raise
    finally:
        if driver.beat is not None:
            driver.beat.stop()
    assert driver.run_id is not None
    store.set_run_status(driver.run_id, "finished")
    return Outcome(
        driver.run_id,
        "finished",
        driver.stored,
        driver.new,
        time.monotonic() - driver.start,
        driver.reason,
        driver.best,
        [a.digest for a in strategy.dropped_init],
    )
