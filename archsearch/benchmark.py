"""Search quality against ground truth: ``archsearch bench search``.

On a tabular benchmark (NAS-Bench-201 with measured latencies: every member of the space has a
row), the best any search can find is known. :func:`ground_truth` enumerates the table's
members of the space, applies the run's budget and constraints with the same gate a search
uses, and finds the best feasible value of the first objective and the true Pareto front.
:func:`bench_search` then runs each strategy for each trial budget and seed through the normal
driver (:func:`archsearch.search.optimize`, every trial stored) and measures, per run:

* **regret**: the best feasible value of the first objective minus the best one found (in the
  objective's direction, so always >= 0);
* **queries to the optimum**: the trials stored until the first one reaching the best
  feasible value, or none;
* **hypervolume ratio** (several objectives): the hypervolume of the run's front divided by
  the true front's, both bounded by the reference point of the worst value of each objective
  among the feasible members.

Everything is deterministic under the seeds: strategies are, and so are the table lookups.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.cost import Budget, count
from archsearch.db import Store
from archsearch.errors import UserError
from archsearch.evaluators import COST_METRICS, Table
from archsearch.pareto import hypervolume, non_dominated_ranks, to_minimisation
from archsearch.search import Search, configure, optimize, parse_objectives
from archsearch.solvers import Objective
from archsearch.spaces import Space
from archsearch.spec import Architecture


@dataclass(frozen=True)
class Truth:
    """The best a search of the table can do.

    Attributes:
        objectives: The objectives, the first one scored by regret.
        members: Rows of the table that are members of the space.
        feasible: Members within the budget and constraints.
        best: The best feasible value of the first objective.
        best_keys: The table keys (e.g. ``arch_str``) of the members reaching it.
        front: The true Pareto front of the feasible members, as minimisation values.
        reference: The hypervolume reference point (minimisation form).
        hypervolume: The true front's hypervolume (NaN with one objective).
        values: The first objective's value of every feasible member (minimisation form).
    """

    objectives: tuple[Objective, ...]
    members: int
    feasible: int
    best: float
    best_keys: tuple[str, ...]
    front: np.ndarray
    reference: np.ndarray
    hypervolume: float
    values: np.ndarray

    def random_regret(self, queries: int) -> float:
        """The exact expected regret of ``queries`` uniform draws without replacement from the
        feasible members: the ``i``-th best value is the best drawn with probability
        ``C(n - i, q - 1) / C(n, q)``."""
        v = np.sort(self.values[np.isfinite(self.values)])  # best (smallest) first
        n = len(v)
        q = min(queries, n)
        i = np.arange(1, n + 1)
        # log C(n - i, q - 1) - log C(n, q), zero where fewer than q - 1 values remain
        ok = n - i >= q - 1
        log_p = np.full(n, -np.inf)
        log_p[ok] = _log_comb(n - i[ok], q - 1) - _log_comb(np.array([n]), q)[0]
        expected = float(np.sum(np.exp(log_p) * v))
        return expected - float(v[0])


def _log_comb(n: np.ndarray, k: int) -> np.ndarray:
    from scipy.special import gammaln

    return np.asarray(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1), dtype=np.float64)


@dataclass
class RunQuality:
    """How one search did."""

    strategy: str
    trials: int
    seed: int
    run_id: int
    regret: float
    queries_to_optimum: int | None
    hv_ratio: float
    seconds: float


@dataclass
class Summary:
    """The runs of one strategy and trial budget, over the seeds."""

    strategy: str
    trials: int
    runs: list[RunQuality] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        regrets = [r.regret for r in self.runs]
        hits = [r.queries_to_optimum for r in self.runs if r.queries_to_optimum is not None]
        hv = [r.hv_ratio for r in self.runs if not math.isnan(r.hv_ratio)]
        return {
            "strategy": self.strategy,
            "trials": self.trials,
            "seeds": len(self.runs),
            "regret_mean": statistics.fmean(regrets),
            "regret_std": statistics.pstdev(regrets),
            "regret_median": statistics.median(regrets),
            "regret_max": max(regrets),
            "found_optimum": f"{len(hits)}/{len(self.runs)}",
            "queries_to_optimum": statistics.fmean(hits) if hits else math.nan,
            "hv_ratio_mean": statistics.fmean(hv) if hv else math.nan,
            "hv_ratio_std": statistics.pstdev(hv) if hv else math.nan,
            "seconds_per_run": statistics.fmean(r.seconds for r in self.runs),
        }


def _check_objectives(objectives: Sequence[Objective], table: Table) -> None:
    allowed = {m.name for m in table.metrics} | {m.name for m in COST_METRICS}
    for o in objectives:
        if o.name not in allowed:
            raise UserError(
                f"--objectives: {o.name!r} is neither a column of the table nor an exact cost; "
                "bench search scores every member, so objectives must be columns "
                f"({', '.join(m.name for m in table.metrics)}) or params/macs/activations"
            )


def table_members(space: Space, table: Table) -> list[tuple[str, Architecture]]:
    """Each table key that names a member of ``space``, with the member.

    Raises:
        UserError: the table is keyed by digest (its rows cannot be built into networks).
    """
    if table.key != "arch_str":
        raise UserError(
            f"--table {table.data.path}: bench search enumerates the space from the table's "
            "keys, which needs an arch_str column (NAS-Bench-201 cells); digests cannot be "
            "built back into networks"
        )
    from archsearch.spaces.nb201 import from_arch_str

    cache_key = (space.source or space.name, table.data.sha256)
    if cache_key not in _MEMBERS:
        out = []
        for key in table.data.rows:
            try:
                out.append((key, from_arch_str(key, space)))
            except UserError:
                continue  # a row outside the space (e.g. a restricted variant of it)
        _MEMBERS.clear()  # one table at a time: the NAS-Bench-201 one holds 15,625 networks
        _MEMBERS[cache_key] = out
    return _MEMBERS[cache_key]


_MEMBERS: dict[tuple[str, str], list[tuple[str, Architecture]]] = {}


def ground_truth(
    space: Space,
    table: Table,
    objectives: Sequence[Objective],
    *,
    budget: Budget | None = None,
    constraints: Sequence[str] = (),
) -> Truth:
    """The best feasible value and the true front over every member the table scores."""
    _check_objectives(objectives, table)
    members = table_members(space, table)
    if not members:
        raise UserError(f"--table {table.data.path}: no row is a member of space {space.name!r}")
    probe = configure(
        space=space,
        objectives=[str(o) for o in objectives],
        scores=["table"],
        budget=budget,
        constraints=constraints,
        evaluator_options={"table": table.config()},
    )
    gate = probe.gate
    gate.give_up = False  # every member is checked: the table is the whole space
    keys, rows = [], []
    for key, arch in members:
        if not gate(arch):
            continue
        values = {**table.evaluate([arch])[0], **count(arch).as_dict()}
        keys.append(key)
        rows.append([float(values[o.name]) for o in objectives])
    if not rows:
        raise UserError("budget/constraint: no member of the table is feasible; relax the bounds")
    v = to_minimisation(rows, [o.direction for o in objectives])
    finite = np.all(np.isfinite(v), axis=1)
    best_min = float(v[finite, 0].min())
    best_keys = tuple(
        k for k, row, ok in zip(keys, v, finite, strict=True) if ok and row[0] == best_min
    )
    front = v[finite][non_dominated_ranks(v[finite]) == 0]
    reference = v[finite].max(axis=0)
    hv = hypervolume(front, reference) if len(objectives) > 1 else math.nan
    sign = -1.0 if objectives[0].direction == "max" else 1.0
    return Truth(
        tuple(objectives),
        len(members),
        len(rows),
        sign * best_min,
        best_keys,
        front,
        reference,
        hv,
        v[finite, 0],
    )


def run_quality(
    store: Store,
    run_id: int,
    truth: Truth,
    *,
    strategy: str,
    trials: int,
    seed: int,
    seconds: float,
) -> RunQuality:
    """Regret, queries to the optimum and hypervolume ratio of a stored run."""
    objectives = truth.objectives
    stored = store.trials(run_id)
    order = {t.number: i + 1 for i, t in enumerate(stored)}  # queries asked up to each trial
    done = [t for t in stored if t.state == "complete"]
    rows = [
        [float({**t.cost.as_dict(), **t.values}.get(o.name, math.nan)) for o in objectives]
        for t in done
    ]
    v = (
        to_minimisation(rows, [o.direction for o in objectives])
        if rows
        else np.empty((0, len(objectives)))
    )
    first = v[:, 0] if len(v) else np.empty(0)
    sign = -1.0 if objectives[0].direction == "max" else 1.0
    best_min = sign * truth.best
    found = float(first[np.isfinite(first)].min()) if np.isfinite(first).any() else math.inf
    regret = found - best_min
    hit = next((order[t.number] for t, x in zip(done, first, strict=True) if x <= best_min), None)
    hv_ratio = math.nan
    if len(objectives) > 1 and truth.hypervolume > 0:
        hv_ratio = hypervolume(v, truth.reference) / truth.hypervolume
    return RunQuality(strategy, trials, seed, run_id, regret, hit, hv_ratio, seconds)


def bench_search(
    *,
    space: Space,
    table_options: dict[str, Any],
    strategies: Sequence[str],
    trials: Sequence[int],
    seeds: int,
    first_seed: int = 0,
    objectives: str | None = None,
    budget: Budget | None = None,
    constraints: Sequence[str] = (),
    batch_size: int = 8,
    strategy_options: dict[str, Any] | None = None,
    db: str | None = None,
    on_run: Callable[[RunQuality], None] | None = None,
) -> tuple[Truth, list[Summary]]:
    """Runs every strategy x trial budget x seed on the table and measures each run.

    Args:
        space: The space searched.
        table_options: Options of the table evaluator (``path``, ``key``, ...).
        strategies: Strategy names (``random``, ``evolution``, ``optuna:tpe``, ...).
        trials: Trial budgets; each is a separate run per seed.
        seeds: Runs per strategy and budget, with seeds first_seed .. first_seed + seeds - 1.
        first_seed: The first seed (tune options on some seeds, report on others).
        objectives: ``metric:dir,...`` over table columns and exact costs (default: the
            table's first metric).
        budget: Bounds on MACs and parameters.
        constraints: Constraint expressions (e.g. ``lat_ms_raspi4 <= 25.68``).
        batch_size: Candidates per ask/tell round.
        strategy_options: Options given to every strategy that accepts them.
        db: Where the runs are stored; default: a temporary SQLite file, deleted after.
        on_run: Called after each run (progress).
    """
    if seeds < 1:
        raise UserError(f"--seeds: {seeds} must be at least 1")
    if not strategies:
        raise UserError("--strategies: give at least one, e.g. random,evolution,optuna:tpe")
    for n in trials:
        if n < 1:
            raise UserError(f"--trials: {n} must be at least 1")
    table = Table(**table_options)
    objs = parse_objectives(
        objectives or f"{table.metrics[0].name}:{table.metrics[0].direction}",
        extra={m.name: m for m in table.metrics},
    )

    def make(name: str, n: int, seed: int) -> Search:
        return configure(
            space=space,
            strategy=name,
            strategy_options=_accepted(name, strategy_options or {}),
            objectives=[str(o) for o in objs],
            scores=["table"],
            budget=budget,
            constraints=constraints,
            n_trials=n,
            batch_size=batch_size,
            seed=seed,
            evaluator_options={"table": table.config()},
        )

    for name in strategies:  # every strategy and option checked before anything runs
        make(name, max(trials), first_seed + seeds - 1)
    truth = ground_truth(space, table, objs, budget=budget, constraints=constraints)
    with tempfile.TemporaryDirectory(prefix="archsearch-bench-") as tmp:
        store = Store(db or f"sqlite:///{Path(tmp) / 'bench.db'}")
        summaries = []
        for name in strategies:
            for n in trials:
                summary = Summary(name, n)
                for seed in range(first_seed, first_seed + seeds):
                    search = make(name, n, seed)
                    start = time.monotonic()
                    outcome = optimize(store, search)
                    quality = run_quality(
                        store,
                        outcome.run_id,
                        truth,
                        strategy=name,
                        trials=n,
                        seed=seed,
                        seconds=time.monotonic() - start,
                    )
                    summary.runs.append(quality)
                    if on_run is not None:
                        on_run(quality)
                summaries.append(summary)
        store.close()
    return truth, summaries


def _accepted(strategy: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options for ``strategy``: ``name=value`` where it takes ``name``, and
    ``<strategy>.name=value`` (e.g. ``evolution.population``) for it alone."""
    from archsearch.solvers import strategy_class

    base, _, variant = strategy.partition(":")
    takes = strategy_class(strategy).option_names(variant or None)
    out = {}
    for key, value in options.items():
        target, dot, name = key.rpartition(".")
        if dot and target in (strategy, base):
            out[name] = value
        elif not dot and key in takes:
            out[key] = value
    return out
