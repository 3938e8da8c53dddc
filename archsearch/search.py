"""The driver loop: ask -> budget filter -> evaluate -> store -> tell.

One loop owns looping, budgets, errors, time limits and storage; strategies only propose and
learn. Where candidates are evaluated is an :class:`Executor`: this process
(:class:`InProcess`) or a Ray cluster (:mod:`archsearch.distributed`). A run's every finished
trial is in the store, with the strategy's state after each full batch, and the strategy is
deterministic given its seed and what it is told, so :func:`optimize` with ``run_id`` rebuilds
a run from the database alone: it claims the run (refusing one whose owner still lives),
restores the strategy's state or replays the stored results into a fresh strategy (asking the
same batches, telling the stored scores instead of evaluating again), and continues where the
run stopped, after Ctrl-C as after a crash or ``kill -9``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from archsearch.blocks import Cost
from archsearch.cost import Budget, count, format_si
from archsearch.db import (
    FINISHED_STATES,
    Claim,
    RunConfig,
    RunTakenOver,
    Store,
    StoredTrial,
    TrialRecord,
    worker_id,
)
from archsearch.db.heartbeat import STALE_AFTER, Heartbeat
from archsearch.db.models import utcnow
from archsearch.errors import BudgetError, UserError, check_ranges
from archsearch.evaluators import (
    COST_METRICS,
    EVALUATORS,
    Evaluator,
    Metric,
    evaluator_for,
    known_metrics,
    primary_metric,
)
from archsearch.expr import Expr, parse_expr
from archsearch.limits import MAX_BATCH, MAX_INT, MAX_SECONDS
from archsearch.solvers import (
    Objective,
    Problem,
    Result,
    Strategy,
    create_strategy,
    strategy_class,
)
from archsearch.solvers.base import parse_objectives
from archsearch.spaces import Space
from archsearch.spec import Architecture

DEFAULT_SCORE = "naswot"
"""The score a search optimises when neither objectives nor scores are given: the cheap score
that ranked architectures best by trained accuracy in ``benchmarks/proxy_ranking.py`` (see the
README's Scores section), ahead of DeepMAD's entropy."""
DEFAULT_OBJECTIVE = f"{DEFAULT_SCORE}:max"


MAX_SCORED_UNTIL_FEASIBLE = 100
"""Candidates scored for a constraint (``--constraint "naswot > 900"``) before the first one
that passes; beyond, the constraint counts as out of reach and the run is refused (see
:class:`Gate`). Costs alone are checked on thousands of proposals in milliseconds."""


class Hopeless(Exception):
    """Raised by :class:`Gate` when no scored candidate has met the constraints in
    :data:`MAX_SCORED_UNTIL_FEASIBLE` tries."""


class Gate:
    """The cheap feasibility test every candidate passes before evaluation.

    It checks the budget on the exact cost, then the constraints (expressions over cost
    metrics and the metrics of cheap evaluators). It remembers the cheapest candidate it
    rejected for the budget and the lowest value of each constrained metric among the
    candidates it rejected for a constraint, to explain a budget no member can meet.
    """

    def __init__(
        self,
        budget: Budget,
        constraints: Sequence[Expr] = (),
        evaluators: Sequence[Evaluator] = (),
    ) -> None:
        self.budget = budget
        self.constraints = tuple(constraints)
        needed = {n for c in self.constraints for n in c.names}
        self._evaluators = [e for e in evaluators if {m.name for m in e.metrics} & needed]
        self.cheapest: Cost | None = None
        self.lowest: dict[str, float] = {}
        self.checked = 0
        self.scored = 0
        """Candidates checked with a score (the costly checks)."""
        self.passed = 0
        self.give_up = True
        """False where every candidate must be checked (a benchmark's ground truth)."""
        self.on_check: Callable[[int, int], None] | None = None
        """Called with ``(scored, passed)`` after each check that computed a score: a
        progress display while a run looks for candidates that meet a constraint on one."""

    def __call__(self, arch: Architecture) -> bool:
        """Whether ``arch`` meets the budget and the constraints.

        Raises:
            Hopeless: :data:`MAX_SCORED_UNTIL_FEASIBLE` candidates were scored for a
                constraint and none has passed yet: the constraint is out of reach (a bound
                nothing meets), and checking the space's thousands of proposals with a score
                would take minutes to say so.
        """
        scored = self.scored
        ok = self._check(arch)
        self.passed += ok
        if self.on_check is not None and self.scored > scored:
            self.on_check(self.scored, self.passed)
        if self.give_up and not self.passed and self.scored >= MAX_SCORED_UNTIL_FEASIBLE:
            raise Hopeless
        return ok

    def _check(self, arch: Architecture) -> bool:
        self.checked += 1
        cost = count(arch)
        if not self.budget.admits(cost):
            if self.cheapest is None or (cost.macs, cost.params) < (
                self.cheapest.macs,
                self.cheapest.params,
            ):
                self.cheapest = cost
            return False
        if not self.constraints:
            return True
        values: dict[str, float] = {k: float(v) for k, v in cost.as_dict().items()}
        self.scored += bool(self._evaluators)
        for ev in self._evaluators:
            values.update(ev.evaluate([arch])[0])
        if all(c.evaluate(values) for c in self.constraints):
            return True
        for name in {n for c in self.constraints for n in c.names}:
            v = values[name]
            if v == v and v < self.lowest.get(name, math.inf):  # not NaN
                self.lowest[name] = v
        return False

    def violations(self, arch: Architecture) -> dict[str, float]:
        """How far ``arch`` is from feasible, per bound: ``<= 0`` where it holds.

        Keys are the same for every architecture: ``macs`` and ``params`` for the budget's
        bounds, then each constraint's text. A bound ``metric <= b`` reports the relative
        excess ``(value - b) / |b|``; other expressions (and NaN values) report 1 when broken
        and 0 when they hold. Read by strategies whose samplers model constraints (Optuna's).
        """
        cost = count(arch)
        out: dict[str, float] = {}
        for name, bound in (("macs", self.budget.macs), ("params", self.budget.params)):
            if bound is not None:
                out[name] = _excess(float(getattr(cost, name)), float(bound))
        if not self.constraints:
            return out
        values: dict[str, float] = {k: float(v) for k, v in cost.as_dict().items()}
        for ev in self._evaluators:
            values.update(ev.evaluate([arch])[0])
        for c in self.constraints:
            bounds = c.upper_bounds()
            if bounds:
                out[c.text] = max(_excess(values[n], b) for n, b in bounds.items())
            else:
                out[c.text] = 0.0 if c.evaluate(values) else 1.0
        return out


def _excess(value: float, bound: float) -> float:
    if not math.isfinite(value):
        return 1.0
    return (value - bound) / max(abs(bound), 1e-12)


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


@dataclass
class Search:
    """A fully configured search, ready to run or resume.

    Build one with :func:`configure` (from user-level options) or :func:`from_run` (from a
    stored run).
    """

    space: Space
    strategy: Strategy
    objectives: tuple[Objective, ...]
    evaluators: list[Evaluator]
    budget: Budget
    constraints: tuple[Expr, ...] = ()
    n_trials: int | None = 2000
    time_limit: float | None = None
    batch_size: int = 32
    seed: int = 0
    notes: list[str] = field(default_factory=list)
    """Things the user should know, e.g. initial candidates skipped for the budget."""
    gate: Gate = field(init=False)

    def __post_init__(self) -> None:
        self.gate = Gate(self.budget, self.constraints, [e for e in self.evaluators if e.cheap])

    def run_config(self) -> RunConfig:
        return RunConfig(
            space=self.space.name,
            space_yaml=self.space.source or "",
            strategy=self.strategy.name,
            strategy_config=self.strategy.config(),
            objectives=[str(o) for o in self.objectives],
            evaluators={e.name: e.config() for e in self.evaluators},
            constraints=[c.text for c in self.constraints],
            budget_macs=self.budget.macs,
            budget_params=self.budget.params,
            seed=self.seed,
            n_trials=self.n_trials,
            time_limit=self.time_limit,
            batch_size=self.batch_size,
        )


def configure(
    *,
    space: Space,
    strategy: str = "evolution",
    strategy_options: dict[str, Any] | None = None,
    objectives: str | Sequence[str] | None = None,
    scores: Sequence[str] = (),
    budget: Budget | None = None,
    constraints: Sequence[str] = (),
    n_trials: int | None = 2000,
    time_limit: float | None = None,
    batch_size: int = 32,
    seed: int = 0,
    init: Sequence[str] = (),
    evaluator_options: dict[str, dict[str, Any]] | None = None,
) -> Search:
    """Builds a :class:`Search` from user-level options, validating each.

    Args:
        space: The search space.
        strategy: A registered strategy name.
        strategy_options: Keyword options of the strategy (``seed`` is set from ``seed``).
        objectives: ``"metric:dir,..."``; the evaluators computing them are added. None:
            the first metric of the first score, in its direction (``train`` ->
            ``accuracy:max``), else the strategy's own objective (deepmad: ``entropy:max``),
            else :data:`DEFAULT_OBJECTIVE` (``naswot:max``).
        scores: Evaluators to run (their metrics are stored); cost metrics (``params``,
            ``macs``, ``activations``) are accepted and always stored.
        budget: Bounds on MACs and parameters.
        constraints: Expressions over cost metrics and cheap evaluators' metrics.
        n_trials: Trials to store in total (None: until the time limit or exhaustion).
        time_limit: Seconds of search per call (None: no limit).
        batch_size: Candidates per ask.
        seed: Seed of the strategy.
        init: Initial candidates, each ``zoo:<name>`` or the path of a spec file; they must
            be members of the space, and those over the budget are skipped with a note.
        evaluator_options: Options per evaluator name, e.g. ``{"latency@cpu": {"threads": 2}}``.
    """
    wanted = [split_score(n) for n in dict.fromkeys(scores)]
    options_of = dict(evaluator_options or {})
    evaluators = create_evaluators(scores, options_of)
    if objectives is None:
        if not wanted:
            objectives = strategy_class(strategy).objective or DEFAULT_OBJECTIVE
        else:
            first = score_metric(*wanted[0], evaluators)
            objectives = f"{first.name}:{first.direction}"
    objs = parse_objectives(objectives, extra=instance_metrics(evaluators))
    for o in objs:
        _ensure_evaluator(o.name, evaluators, what="--objectives", options_of=options_of)
    exprs = tuple(parse_expr(c, what="--constraint") for c in constraints)
    for c in exprs:
        for name in sorted(c.names):
            ev = _ensure_evaluator(name, evaluators, what="--constraint", options_of=options_of)
            if ev is not None and not ev.cheap:
                raise UserError(
                    f"--constraint: {name!r} is measured by an expensive evaluator; constraints "
                    "filter before evaluation, so use cost metrics or cheap scores (or filter "
                    "the results with `archsearch pareto --where`)"
                )
    check_run_numbers(n_trials=n_trials, time_limit=time_limit, batch_size=batch_size, seed=seed)
    budget = budget or Budget()
    initial: list[Architecture] = []
    notes: list[str] = []
    for ref, arch in resolve_init(init):
        member = space.contains(arch)
        if not member:
            raise UserError(f"--init {ref}: not a member of space {space.name!r}: {member.reason}")
        # The budget is checked here; other constraints (which may need the store) when the
        # strategy asks, which drops an initial candidate that breaks them.
        if not budget.admits(cost := count(arch)):
            notes.append(
                f"--init {ref} skipped: {format_si(cost.macs)}FLOPs and {format_si(cost.params)} "
                f"params break {budget}"
            )
            continue
        initial.append(arch)
    notes += _table_notes(space, evaluators)
    options = {**(strategy_options or {}), "seed": seed, "init": [a.to_json() for a in initial]}
    return Search(
        space=space,
        strategy=create_strategy(strategy, **options),
        objectives=objs,
        evaluators=evaluators,
        budget=budget,
        constraints=exprs,
        n_trials=n_trials,
        time_limit=time_limit,
        batch_size=batch_size,
        seed=seed,
        notes=notes,
    )


def check_run_numbers(
    *,
    n_trials: int | None = None,
    time_limit: float | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
) -> None:
    """Refuses a run's counts outside what the loop and the databases hold (NaN included).

    Raises:
        UserError: ``"--trials: 0 is out of range; it must be ..."``.
    """
    checks: list[tuple[str, object, bool, str]] = []
    if n_trials is not None:
        checks.append(
            ("--trials", n_trials, 1 <= n_trials <= MAX_INT, f"a whole number from 1 to {MAX_INT}")
        )
    if time_limit is not None:
        checks.append(
            (
                "--time-limit",
                time_limit,
                0 < time_limit <= MAX_SECONDS,  # False for NaN
                f"a positive number of seconds up to {MAX_SECONDS:.0e}",
            )
        )
    if batch_size is not None:
        checks.append(
            (
                "--batch-size",
                batch_size,
                1 <= batch_size <= MAX_BATCH,
                f"a whole number from 1 to {MAX_BATCH:,}",
            )
        )
    if seed is not None:
        checks.append(
            ("--seed", seed, 0 <= seed <= MAX_INT, f"a whole number from 0 to {MAX_INT}")
        )
    check_ranges(checks)


def _table_notes(space: Space, evaluators: Sequence[Evaluator]) -> list[str]:
    """A note for each table that has no row for any of 64 seeded members of ``space``: its
    metrics will be NaN for the candidates it lacks (a table of another space, say)."""
    tables = [e for e in evaluators if e.name == "table" and hasattr(e, "lookup")]
    if not tables:
        return []
    rng = random.Random(0)
    members = []
    for _ in range(64):
        try:
            members.append(space.sample(rng))
        except UserError:
            break
    notes = []
    for t in tables:
        if members and all(t.lookup(a) is None for a in members):
            cfg = t.config()
            notes.append(
                f"--table {cfg['path']}: none of {len(members)} sampled members of space "
                f"{space.name!r} has a row (key column {cfg['key']}); candidates it lacks score "
                "NaN"
            )
    return notes


def create_evaluators(
    scores: Sequence[str], options_of: dict[str, dict[str, Any]] | None = None
) -> list[Evaluator]:
    """The evaluators of ``scores`` (cost metrics skipped), each with its options; a score
    ``name:metric`` gives an evaluator whose metrics depend on its options (``table``) the
    option ``metric``.

    Raises:
        UserError: an unknown score (the message lists the known ones) or option.
    """
    costs = {m.name for m in COST_METRICS}
    wanted = [split_score(n) for n in dict.fromkeys(scores)]
    names = list(dict.fromkeys(n for n, _ in wanted if n not in costs))
    for n in names:
        EVALUATORS.get(n)  # an unknown score is named, with the list, before anything runs
    options = {n: dict((options_of or {}).get(n, {})) for n in names}
    for n, metric in wanted:
        if metric is not None and n in options and EVALUATORS.get(n).dynamic_metrics:
            options[n]["metric"] = metric
    return [EVALUATORS.create(n, **options[n]) for n in names]


def split_score(score: str) -> tuple[str, str | None]:
    """``table:cifar10_test`` -> ``("table", "cifar10_test")``; ``naswot`` -> its name, None."""
    name, sep, metric = score.partition(":")
    return name.strip(), (metric.strip() or None) if sep else None


def score_metric(name: str, metric: str | None, evaluators: Sequence[Evaluator]) -> Metric:
    """The metric a search optimises for the score ``name[:metric]``, read off the configured
    ``evaluators`` (a table's columns are known only there), or the cost metric ``name``."""
    ev = next((e for e in evaluators if e.name == name), None)
    if ev is None:
        return primary_metric(name)  # a cost metric
    if metric is None:
        return ev.metrics[0]
    found = next((m for m in ev.metrics if m.name == metric), None)
    if found is None:
        raise UserError(
            f"--score {name}:{metric}: {name} has no metric {metric!r}; its metrics: "
            f"{', '.join(m.name for m in ev.metrics)}"
        )
    return found


def instance_metrics(evaluators: Sequence[Evaluator]) -> dict[str, Metric]:
    """The metrics of configured evaluators (a table's columns among them).

    Raises:
        UserError: two evaluators, or an evaluator and a cost metric, share a metric name.
    """
    out: dict[str, Metric] = {m.name: m for m in COST_METRICS}
    owner: dict[str, str] = {m.name: "the exact costs" for m in COST_METRICS}
    for ev in evaluators:
        for m in ev.metrics:
            if m.name in owner and owner[m.name] != ev.name:
                raise UserError(
                    f"metric {m.name!r} comes from both {owner[m.name]} and {ev.name}; leave one "
                    "out (for a table: -S columns=...)"
                )
            out[m.name] = m
            owner[m.name] = ev.name
    return out


def _ensure_evaluator(
    name: str,
    evaluators: list[Evaluator],
    *,
    what: str,
    options_of: dict[str, dict[str, Any]] | None = None,
) -> Evaluator | None:
    """The evaluator computing metric ``name``, created and added if the run lacks it; None
    for a cost metric.

    Raises:
        UserError: no configured or registered evaluator computes ``name``.
    """
    if name in {m.name for m in COST_METRICS}:
        return None
    for ev in evaluators:
        if any(m.name == name for m in ev.metrics):
            return ev
    known = {**known_metrics(), **instance_metrics(evaluators)}
    if name not in known:
        raise UserError(f"{what}: unknown metric {name!r}; choose from {', '.join(sorted(known))}")
    ev_name = evaluator_for(name)
    assert ev_name is not None
    evaluators.append(EVALUATORS.create(ev_name, **(options_of or {}).get(ev_name, {})))
    return evaluators[-1]


def resolve_init(refs: Sequence[str]) -> list[tuple[str, Architecture]]:
    """``zoo:<name>`` or spec-file references (comma-separated allowed) -> architectures."""
    from archsearch import zoo

    out = []
    for chunk in refs:
        for ref in (r.strip() for r in chunk.split(",")):
            if not ref:
                continue
            arch = zoo.get(ref[4:]) if ref.startswith("zoo:") else Architecture.load(ref)
            out.append((ref, arch))
    return out


def from_run(config: RunConfig) -> Search:
    """Rebuilds the :class:`Search` a stored run was started with."""
    if config.strategy == "evaluate":
        raise UserError(
            "--resume: that run records `archsearch evaluate` scores, not a search; start a "
            "new run instead"
        )
    space = Space.from_yaml(config.space_yaml, source=f"<run space {config.space}>")
    evaluators = [EVALUATORS.create(n, **opts) for n, opts in config.evaluators.items()]
    return Search(
        space=space,
        strategy=create_strategy(config.strategy, **config.strategy_config),
        objectives=parse_objectives(config.objectives, extra=instance_metrics(evaluators)),
        evaluators=evaluators,
        budget=Budget(macs=config.budget_macs, params=config.budget_params),
        constraints=tuple(parse_expr(c, what="--constraint") for c in config.constraints),
        n_trials=config.n_trials,
        time_limit=config.time_limit,
        batch_size=config.batch_size,
        seed=config.seed,
    )


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
                trial, record.values, state=record.state, error=record.error, owner=beat.owner
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
    option = "--budget" if bounded and not search.constraints else "--budget/--constraint"
    return BudgetError(
        f"{option}: no member of space {search.space.name!r} meets {' and '.join(parts)} in "
        f"{gate.checked} candidates{'; ' if seen else ''}{'; '.join(seen)}; relax it or pick "
        "another space"
    )


def _evaluate(
    search: Search, archs: Sequence[Architecture]
) -> tuple[list[Result], list[TrialRecord]]:
    """Scores candidates with every evaluator: their results and the trial rows to store."""
    costs = [count(a) for a in archs]
    started = utcnow()
    scores, errors = run_evaluators(search.evaluators, archs)
    finished = utcnow()
    worker = worker_id()
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
            )
        )
    return results, records


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
