"""The driver loop: ask -> budget filter -> evaluate -> store -> tell, with resume.

One loop owns looping, budgets, errors, time limits and storage; strategies only propose and
learn. A run's every finished trial is in the store, with the strategy's state after each full
batch, and the strategy is deterministic given its seed and what it is told, so
:func:`optimize` with ``run_id`` rebuilds a run from the database alone: it claims the run
(refusing one whose owner still lives), restores the strategy's state or replays the stored
results into a fresh strategy (asking the same batches, telling the stored scores instead of
evaluating again), and continues where the run stopped, after Ctrl-C as after a crash or
``kill -9``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from archsearch.cost import format_si
from archsearch.db import (
    FINISHED_STATES,
    Claim,
    RunTakenOver,
    Store,
    StoredTrial,
    worker_id,
)
from archsearch.db.heartbeat import STALE_AFTER, Heartbeat
from archsearch.errors import BudgetError
from archsearch.search.config import Search
from archsearch.search.executors import Executor, InProcess
from archsearch.search.gate import Hopeless
from archsearch.solvers import (
    Objective,
    Problem,
    Result,
    Strategy,
)
from archsearch.spec import Architecture


@dataclass(frozen=True)
class Progress:
    """What the driver reports after each stored batch."""

    run_id: int
    done: int
    total: int | None
    elapsed: float
    best: dict[str, float]


@dataclass
class Outcome:
    """How a call to :func:`optimize` ended."""

    run_id: int
    status: str
    trials: int
    new_trials: int
    elapsed: float
    reason: str
    best: dict[str, float] = field(default_factory=dict)
    dropped_init: list[str] = field(default_factory=list)
    """Digests of initial candidates that broke a constraint and were not evaluated."""
    never_finite: list[str] = field(default_factory=list)
    """Scores' metrics that were NaN (or infinite) in every trial this call evaluated: a
    table that matches no candidate, a proxy that fails on the whole space."""


def _best(
    best: dict[str, float], values: dict[str, float], objectives: Sequence[Objective]
) -> None:
    for o in objectives:
        v = values.get(o.name, math.nan)
        if not math.isfinite(v):
            continue
        old = best.get(o.name)
        if old is None or (v > old if o.direction == "max" else v < old):
            best[o.name] = v


def optimize(
    store: Store,
    search: Search,
    *,
    run_id: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    executor: Executor | None = None,
    takeover: bool = False,
    stale_after: float = STALE_AFTER,
    on_claim: Callable[[Claim], None] | None = None,
) -> Outcome:
    """Runs (or, with ``run_id``, resumes) a search, storing every finished trial.

    A new run's row is created once the strategy has proposed its first batch, so a budget
    that no member meets fails without leaving a run behind. A resumed run is first claimed
    (:meth:`Store.claim_run`: refused while another live process drives it, unless
    ``takeover``); trials its previous owner left unfinished are evaluated again. The
    strategy's state is stored after every batch and restored on resume where the strategy
    supports it; otherwise the stored results are replayed into it.

    Args:
        executor: Where candidates are evaluated (default: :class:`InProcess`).
        takeover: Resume a run even if its owner seems alive.
        stale_after: Seconds without a heartbeat after which a run's owner counts as gone.
        on_claim: Told what claiming a resumed run found.

    Raises:
        BudgetError: the strategy found no candidate within the budget/constraints at all.
        KeyboardInterrupt: after marking the run ``interrupted``; finished trials are kept.
    """
    executor = executor or InProcess()
    prior, asked = prepare(
        store, search, run_id, takeover=takeover, stale_after=stale_after, on_claim=on_claim
    )
    run = RunInProgress(store, search, run_id, prior, asked, on_progress)
    with run.recording():
        while run.stop_reason() is None:
            batch, results = run.ask()
            if not batch:
                break
            todo = [i for i, r in enumerate(results) if r is None]
            if todo:
                assert run.run_id is not None and run.beat is not None
                archs = [batch[i] for i in todo]
                fresh = executor.evaluate(search, store, run.run_id, archs, run.beat)
                for i, r in zip(todo, fresh, strict=True):
                    results[i] = r
            run.tell(batch, results, len(todo))
    return run.outcome()


@dataclass
class RunInProgress:
    """A driver's run in progress: the loop's bookkeeping shared by :func:`optimize` and the
    Ray Tune searcher (:mod:`archsearch.distributed.tune`), which evaluate differently.

    The run's row is created once the strategy has proposed its first batch, with this
    process as owner and a :class:`Heartbeat` from then on.
    """

    store: Store
    search: Search
    run_id: int | None
    prior: dict[str, StoredTrial]
    """The run's finished trials by digest (resumed runs), told instead of evaluated."""
    asked: int
    on_progress: Callable[[Progress], None] | None = None
    owner: str = field(default_factory=worker_id)
    stored: int = 0
    new: int = 0
    best: dict[str, float] = field(default_factory=dict)
    start: float = field(default_factory=time.monotonic)
    reason: str = "trials"
    beat: Heartbeat | None = None
    finite: dict[str, int] = field(default_factory=dict)
    """Per evaluator metric, how many new trials had a finite value."""

    def __post_init__(self) -> None:
        self.stored = len(self.prior)
        for t in self.prior.values():
            if t.state == "complete":
                _best(self.best, {**t.cost.as_dict(), **t.values}, self.search.objectives)

    def stop_reason(self) -> str | None:
        """Why the run stops now (also kept in :attr:`reason`), or None to go on.

        Raises:
            UserError: another process has taken the run over.
        """
        search = self.search
        if search.n_trials is not None and self.asked >= search.n_trials:
            self.reason = "trials"
            return self.reason
        replaying = self.asked < len(self.prior)  # re-asking stored trials costs no time
        if (
            not replaying
            and search.time_limit
            and time.monotonic() - self.start >= search.time_limit
        ):
            self.reason = "time limit"
            return self.reason
        if self.beat is not None and self.beat.lost and self.run_id is not None:
            raise RunTakenOver(self.run_id, None)
        return None

    def ask(self) -> tuple[list[Architecture], list[Result | None]]:
        """The strategy's next batch, with the stored result of each candidate the run has
        finished already (None for those to evaluate); an empty batch when exhausted.

        Raises:
            BudgetError: the strategy found no candidate within the budget at all.
        """
        search = self.search
        limit = search.n_trials
        n = search.batch_size if limit is None else min(search.batch_size, limit - self.asked)
        try:
            batch = search.strategy.ask(n)
        except Hopeless:
            batch = []
        if not batch:
            if self.run_id is None or (self.asked == 0 and not self.prior):
                raise _no_candidate(search)
            self.reason = "strategy exhausted"
            return [], []
        if self.run_id is None:
            self.run_id = self.store.create_run(search.run_config(), owner=self.owner)
            if self.on_progress is not None:  # the run's id is known from now on
                elapsed = time.monotonic() - self.start
                self.on_progress(Progress(self.run_id, 0, search.n_trials, elapsed, self.best))
        if self.beat is None:
            self.beat = Heartbeat(self.store, self.run_id, self.owner).start()
        self.asked += len(batch)
        return batch, [_replayed(a, self.prior) for a in batch]

    def tell(
        self, batch: Sequence[Architecture], results: Sequence[Result | None], new: int
    ) -> None:
        """Tells the strategy the whole batch (``new`` of its results were just evaluated and
        stored), stores its state and reports progress."""
        search = self.search
        told = [r for r in results if r is not None]
        assert self.run_id is not None and len(told) == len(batch)
        self.stored += new
        self.new += new
        search.strategy.tell(told)
        # Only after full batches: a run cut short by --trials re-asks its last batch whole
        # when resumed, so that it continues exactly as an uninterrupted run would.
        if new and len(batch) == search.batch_size:
            state = search.strategy.state_dict()
            if state is not None:
                self.store.save_strategy_state(
                    self.run_id, {"asked": self.asked, "state": state}, owner=self.owner
                )
        for r in told:
            if r.state == "complete":
                _best(self.best, dict(r.values), search.objectives)
        for r in told:
            if r.state != "complete" or r.arch.digest in self.prior:
                continue
            for ev in search.evaluators:
                for m in ev.metrics:
                    ok = math.isfinite(r.values.get(m.name, math.nan))
                    self.finite[m.name] = self.finite.get(m.name, 0) + ok
        if self.on_progress is not None and new:
            elapsed = time.monotonic() - self.start
            self.on_progress(
                Progress(self.run_id, self.stored, search.n_trials, elapsed, self.best)
            )

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Marks the run ``interrupted`` (Ctrl-C) or ``failed`` (with the error) if the block
        raises, and stops the heartbeat when it ends."""
        try:
            yield
        except RunTakenOver:
            raise  # the run is the new owner's now: its status is not this process's to set
        except KeyboardInterrupt:
            if self.run_id is not None:
                self.store.set_run_status(self.run_id, "interrupted", owner=self.owner)
            raise
        except BaseException as e:
            if self.run_id is not None:
                self.store.set_run_status(
                    self.run_id, "failed", error=f"{type(e).__name__}: {e}", owner=self.owner
                )
            raise
        finally:
            if self.beat is not None:
                self.beat.stop()

    def outcome(self) -> Outcome:
        """Marks the run ``finished`` and says how it went."""
        assert self.run_id is not None
        if not self.store.set_run_status(self.run_id, "finished", owner=self.owner):
            raise RunTakenOver(self.run_id, self.store.get_run(self.run_id).owner)
        return Outcome(
            self.run_id,
            "finished",
            self.stored,
            self.new,
            time.monotonic() - self.start,
            self.reason,
            self.best,
            [a.digest for a in self.search.strategy.dropped_init],
            [m for m, n in self.finite.items() if n == 0 and self.new > 0],
        )


def prepare(
    store: Store,
    search: Search,
    run_id: int | None,
    *,
    takeover: bool = False,
    stale_after: float = STALE_AFTER,
    on_claim: Callable[[Claim], None] | None = None,
) -> tuple[dict[str, StoredTrial], int]:
    """Sets the strategy up, and for a resumed run claims it for this process and restores
    the strategy's state; returns the run's finished trials by digest and how many candidates
    the restored strategy had asked. Shared by every driver (in-process, Ray, Tune)."""
    for ev in search.evaluators:
        ev.bind(store)
    search.strategy.setup(
        Problem(
            search.space,
            search.objectives,
            search.gate,
            budget=search.budget,
            constraints=search.constraints,
            violations=search.gate.violations,
        )
    )
    if run_id is None:
        return {}, 0
    claim = store.claim_run(run_id, owner=worker_id(), stale_after=stale_after, force=takeover)
    if on_claim is not None:
        on_claim(claim)
    prior = {t.digest: t for t in store.trials(run_id, states=FINISHED_STATES)}
    return prior, _restore(store, run_id, search.strategy)


def _restore(store: Store, run_id: int, strategy: Strategy) -> int:
    """Loads the strategy's stored state; returns how many candidates it had asked (0 when
    there is no usable state: the driver then replays the stored results)."""
    saved = store.strategy_state(run_id)
    if not saved or not strategy.restorable:
        return 0
    strategy.load_state_dict(saved["state"])
    return int(saved["asked"])


def _replayed(arch: Architecture, prior: Mapping[str, StoredTrial]) -> Result | None:
    """The stored result of ``arch`` in the run being resumed, or None."""
    old = prior.get(arch.digest)
    if old is None:
        return None
    values = {**{k: float(v) for k, v in old.cost.as_dict().items()}, **old.values}
    state = "complete" if old.state == "complete" else "failed"
    return Result(arch, values, state)  # type: ignore[arg-type]


def _no_candidate(search: Search) -> BudgetError:
    gate = search.gate
    bounded = search.budget.macs is not None or search.budget.params is not None
    parts = ([str(search.budget)] if bounded else []) + [c.text for c in search.constraints]
    seen = []
    if gate.cheapest is not None:
        seen.append(
            f"the cheapest candidate seen costs {format_si(gate.cheapest.macs)}FLOPs and "
            f"{format_si(gate.cheapest.params)} params"
        )
    seen += [
        f"the lowest {name} seen is {value:.4g}" for name, value in sorted(gate.lowest.items())
    ]
    option = "budget" if bounded and not search.constraints else "budget/constraint"
    return BudgetError(
        f"{option}: no member of space {search.space.name!r} meets {' and '.join(parts)} in "
        f"{gate.checked} candidates{'; ' if seen else ''}{'; '.join(seen)}; relax it or pick "
        "another space"
    )
