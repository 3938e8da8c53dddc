"""A search's configuration: :class:`Search` built from user-level options
(:func:`configure`) or from a stored run (:func:`from_run`, :func:`resume_search`), the
scores it computes and the objectives it optimises."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from archsearch.cost import Budget, count, format_si
from archsearch.cost.metrics import DEFAULT_OBJECTIVE
from archsearch.db import RunConfig, Store
from archsearch.errors import UserError, check_ranges
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
from archsearch.search.gate import Gate
from archsearch.solvers import (
    Objective,
    Strategy,
    create_strategy,
    strategy_class,
)
from archsearch.spaces import Space
from archsearch.spec import Architecture


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
        _ensure_evaluator(o.name, evaluators, what="objectives", options_of=options_of)
    exprs = tuple(parse_expr(c, what="constraint") for c in constraints)
    for c in exprs:
        for name in sorted(c.names):
            ev = _ensure_evaluator(name, evaluators, what="constraint", options_of=options_of)
            if ev is not None and not ev.cheap:
                raise UserError(
                    f"constraint: {name!r} is measured by an expensive evaluator; constraints "
                    "filter before evaluation, so use cost metrics or cheap scores (or filter "
                    "the results with `archsearch pareto --where`)"
                )
    check_run_numbers(n_trials=n_trials, time_limit=time_limit, batch_size=batch_size, seed=seed)
    for ev in evaluators:
        ev.check_space(space)
    budget = budget or Budget()
    initial: list[Architecture] = []
    notes: list[str] = []
    for ref, arch in resolve_init(init):
        member = space.contains(arch)
        if not member:
            raise UserError(f"init {ref}: not a member of space {space.name!r}: {member.reason}")
        # The budget is checked here; other constraints (which may need the store) when the
        # strategy asks, which drops an initial candidate that breaks them.
        if not budget.admits(cost := count(arch)):
            notes.append(
                f"init {ref} skipped: {format_si(cost.macs)}FLOPs and {format_si(cost.params)} "
                f"params break {budget}"
            )
            continue
        initial.append(arch)
    notes += _table_notes(space, evaluators)
    notes += [n for ev in evaluators for n in ev.notes()]
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
        UserError: ``"trials: 0 is out of range; it must be ..."`` (the CLI says ``--trials``).
    """
    checks: list[tuple[str, object, bool, str]] = []
    if n_trials is not None:
        checks.append(
            ("trials", n_trials, 1 <= n_trials <= MAX_INT, f"a whole number from 1 to {MAX_INT}")
        )
    if time_limit is not None:
        checks.append(
            (
                "time_limit",
                time_limit,
                0 < time_limit <= MAX_SECONDS,  # False for NaN
                f"a positive number of seconds up to {MAX_SECONDS:.0e}",
            )
        )
    if batch_size is not None:
        checks.append(
            (
                "batch_size",
                batch_size,
                1 <= batch_size <= MAX_BATCH,
                f"a whole number from 1 to {MAX_BATCH:,}",
            )
        )
    if seed is not None:
        checks.append(("seed", seed, 0 <= seed <= MAX_INT, f"a whole number from 0 to {MAX_INT}"))
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
                f"table {cfg['path']}: none of {len(members)} sampled members of space "
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
            f"score {name}:{metric}: {name} has no metric {metric!r}; its metrics: "
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
            "resume: that run records `archsearch evaluate` scores, not a search; start a "
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
        constraints=tuple(parse_expr(c, what="constraint") for c in config.constraints),
        n_trials=config.n_trials,
        time_limit=config.time_limit,
        batch_size=config.batch_size,
        seed=config.seed,
    )


def resume_search(
    store: Store,
    run_id: int,
    *,
    n_trials: int | None = None,
    time_limit: float | None = None,
) -> Search:
    """The :class:`Search` that continues stored run ``run_id`` with its stored settings;
    ``n_trials`` (a new total) and ``time_limit`` are the only ones that may change.

    Raises:
        UserError: an unknown run, a run of scores rather than a search, or a run that already
            has ``n_trials`` trials (``"resume: run 3 already has 10 trials; ..."``).
    """
    check_run_numbers(n_trials=n_trials, time_limit=time_limit)
    info = store.get_run(run_id)
    search = from_run(info.config)
    if n_trials is not None:
        search.n_trials = n_trials
    if time_limit is not None:
        search.time_limit = time_limit
    if search.n_trials is not None and info.n_finished >= search.n_trials:
        raise UserError(
            f"resume: run {run_id} already has {info.n_finished} trials; ask for a larger "
            "total of trials to continue it"
        )
    return search


def within_target(config: RunConfig, where: Expr | None = None) -> Expr | None:
    """The filter of a run's front: ``where`` and, for a strategy that walks down to its
    budget and constraints (slimming, contraction: the networks on the way break them), the
    budget and constraints themselves. None when nothing filters."""
    parts = [f"({where.text})"] if where is not None else []
    try:
        walks = strategy_class(config.strategy).walks
    except UserError:  # a strategy no longer installed: show the trials as stored
        walks = False
    if walks:
        parts += [f"({c})" for c in config.constraints]
        if config.budget_macs is not None:
            parts.append(f"macs <= {config.budget_macs}")
        if config.budget_params is not None:
            parts.append(f"params <= {config.budget_params}")
    return parse_expr(" and ".join(parts), what="where") if parts else None


def parse_objectives(
    text: str | Sequence[str], *, extra: Mapping[str, Metric] | None = None
) -> tuple[Objective, ...]:
    """Parses ``"macs:min,entropy:max"``; a metric without ``:dir`` takes its usual direction.

    Args:
        text: The objectives, comma-separated or as a sequence.
        extra: Metrics known beyond the registered ones (a table's columns).

    Raises:
        UserError: an unknown metric (the message lists the known ones) or direction.
    """
    parts = [text] if isinstance(text, str) else list(text)
    items = [p.strip() for chunk in parts for p in chunk.split(",") if p.strip()]
    if not items:
        raise UserError("objectives: give at least one, e.g. entropy:max or macs:min,entropy:max")
    metrics = {**known_metrics(), **(extra or {})}
    out: list[Objective] = []
    for item in items:
        name, _, direction = item.partition(":")
        name = name.strip()
        if name not in metrics:
            raise UserError(
                f"objectives: unknown metric {name!r}; choose from {', '.join(sorted(metrics))}"
            )
        direction = direction.strip().lower() or metrics[name].direction
        if direction not in ("min", "max"):
            raise UserError(
                f"objectives: direction {direction!r} of {name!r} must be 'min' or 'max'"
            )
        if any(o.name == name for o in out):
            raise UserError(f"objectives: {name!r} is given twice")
        out.append(Objective(name, direction))  # type: ignore[arg-type]
    return tuple(out)
