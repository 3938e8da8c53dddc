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
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ray import tune
from ray.tune.search import Searcher

from archsearch.cost import count
from archsearch.db import FINISHED_STATES, Claim, Store, worker_id
from archsearch.db.heartbeat import STALE_AFTER
from archsearch.distributed.tasks import beat_trials, worker_store
from archsearch.errors import UserError
from archsearch.search import RunInProgress, devices_of, prepare, run_evaluators
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
    """The ask/tell bookkeeping behind :class:`StrategySearcher`: one asked batch at a time,
    its new candidates handed to Tune one per trial."""

    def __init__(self, run: RunInProgress) -> None:
        self.run = run
        self.store = run.store
        self.search = run.search
        self.batch: list[Architecture] = []
        self.results: list[Result | None] = []
        self.trial_ids: dict[int, int] = {}  # batch index -> trial id in the database
        self.queue: list[int] = []
        self.by_tune: dict[str, int] = {}
        self.error: BaseException | None = None

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        while True:
            if self.queue:
                i = self.queue.pop(0)
                self.by_tune[trial_id] = i
                return {"trial": self.trial_ids[i], "arch": self.batch[i].to_json()}
            if any(r is None for r in self.results):
                return None  # the rest of the batch is still being evaluated
            if self.run.stop_reason() is not None:
                return FINISHED
            self.batch, self.results = self.run.ask()
            if not self.batch:
                return FINISHED
            todo = [i for i, r in enumerate(self.results) if r is None]
            if todo:
                assert self.run.run_id is not None
                ids = self.store.queue_trials(
                    self.run.run_id,
                    [(self.batch[i], count(self.batch[i])) for i in todo],
                    owner=self.run.owner,
                )
                self.trial_ids = dict(zip(todo, ids, strict=True))
                self.queue = todo
            else:
                self.run.tell(self.batch, self.results, 0)

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
        if all(r is not None for r in self.results):
            self.run.tell(self.batch, self.results, len(self.trial_ids))


def trainable(config: dict[str, Any], url: str, evaluators: list[Evaluator]) -> None:
    """The Tune trial: evaluates one candidate on a worker, storing it and its intermediate
    results, and reporting them to Tune (a retried trial whose candidate an earlier attempt
    finished reports the stored result)."""
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
    store.finish_trial(
        tid,
        scores,
        state="failed" if error else "complete",
        error=error,
        device=devices_of(evaluators),
    )
    tune.report(_finite(scores))


def _finite(values: Mapping[str, float]) -> dict[str, float]:
    """The finite values (Tune's schedulers compare what is reported; NaN/inf are left out)."""
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
    objective = search.objectives[0]
    sched: Any = None
    if scheduler is not None:
        if scheduler not in SCHEDULERS:
            raise UserError(
                f"scheduler: unknown scheduler {scheduler!r}; choose from {', '.join(SCHEDULERS)}"
            )
        train = next((e for e in search.evaluators if e.name == "train"), None)
        if train is None or objective.name not in ("accuracy", "loss"):
            raise UserError(
                f"scheduler {scheduler}: it stops candidates on intermediate results, which "
                "only training reports; use the train score with accuracy (or loss) as the "
                f"first objective (the first objective is {objective})"
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
    prior, asked = prepare(
        store, search, run_id, takeover=takeover, stale_after=stale_after, on_claim=on_claim
    )
    driver = _Driver(RunInProgress(store, search, run_id, prior, asked, on_progress))
    searcher = StrategySearcher(driver, metric=objective.name, mode=objective.direction)
    for ev in search.evaluators:
        ev.on_step = None  # progress bars live in the driver's terminal, not on workers
    resources: dict[str, float] = {"cpu": cpus, "gpu": gpus}
    # Tune's new console output ignores verbose=0; the classic reporter honours it. The
    # progress bar of `archsearch run` shows the run instead.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    tuner = tune.Tuner(
        tune.with_resources(
            tune.with_parameters(trainable, url=url, evaluators=list(search.evaluators)), resources
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
    with driver.run.recording():
        tuner.fit()
        if driver.error is not None:
            raise driver.error
    return driver.run.outcome()
