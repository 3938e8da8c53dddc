"""What the store holds, as its users ask for it: run rows, objectives and filters, Pareto
fronts of one run or several with the zoo beside them, architecture documents.

The CLI (``archsearch runs``, ``pareto``, ``show``, ``plot``) and the service
(``archsearch serve``) answer from here, with the same messages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archsearch.cost import FLOP_CONVENTION, Budget
from archsearch.errors import UserError
from archsearch.expr import Expr, parse_expr
from archsearch.spec import Architecture

if TYPE_CHECKING:
    from archsearch.db import RunConfig, RunInfo, Store


def run_row(r: RunInfo, *, stale_after: float) -> dict[str, Any]:
    """A run as a row of ``archsearch runs`` (a run whose owner is gone shows as stale)."""
    from archsearch.db import is_stale

    c = r.config
    return {
        "id": r.id,
        "status": "stale" if is_stale(r, stale_after) else r.status,
        "space": c.space,
        "strategy": c.strategy,
        "objectives": ",".join(c.objectives),
        "budget": str(Budget(c.budget_macs, c.budget_params)),
        "constraints": " and ".join(c.constraints) or "-",
        "trials": r.n_complete,
        "failed": r.n_failed,
        "pruned": r.n_pruned,
        "active": r.n_active,
        "seed": c.seed,
        "sweep": r.sweep or "-",
        "owner": r.owner or "-",
        "heartbeat": r.heartbeat_at.isoformat(timespec="seconds") if r.heartbeat_at else "-",
        "created": r.created_at.isoformat(timespec="seconds"),
        "host": r.host,
    }


@dataclass
class Front:
    """A Pareto front as rows, the columns to show, a title and the objectives."""

    rows: list[dict[str, Any]]
    columns: list[str]
    title: str
    objectives: list[tuple[str, str]]


def front(
    store: Store,
    *,
    run: int | None = None,
    runs: str | None = None,
    sweep: str | None = None,
    space: str | None = None,
    all_runs: bool = False,
    objectives: str | None = None,
    where: str | None = None,
    walk: bool = False,
    with_zoo: bool = False,
    limit: int | None = None,
) -> Front:
    """The front of one run (``run``) or of several (``runs``, ``sweep``, ``space``,
    ``all_runs``): see ``archsearch pareto``.

    Raises:
        UserError: the runs, objectives or filter are not valid for the store.
    """
    ids = select_runs(store, run=run, runs=runs, sweep=sweep, space=space, all_runs=all_runs)
    newest = store.run_config(max(ids))
    objs = run_objectives(store, ids, objectives)
    names = list(dict(objs))
    if run is not None:
        expr = run_filter(newest, where, walk=walk)
        metrics = store.metrics(run)
        front = store.pareto(run, objs, where=expr, extra=metrics)
        lead = ["trial"]
        what = f"run {run}"
    else:
        front, metrics, expr, n = _front_across(store, ids, objs, where, walk=walk)
        lead = ["run", "trial"]
        what = f"{len(ids)} runs ({_ids(ids)}), {n:,} architectures"
    if limit is not None:
        front = front[:limit]
    columns = [
        *lead,
        *names,
        *[c for c in ("params", "macs") if c not in names],
        *[m for m in metrics if m not in names],
        *(["runs"] if run is None else []),
        "digest",
    ]
    if with_zoo:
        front = with_zoo_points(newest, front, objs, expr)
        columns.insert(len(lead), "zoo")
    return Front(
        front,
        columns,
        f"{what}: Pareto front over {', '.join(f'{n}:{d}' for n, d in objs)}"
        + (f" where {where}" if where else ""),
        objs,
    )


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(map(str, ids)) if len(ids) <= 8 else f"{ids[0]}..{ids[-1]}"


def select_runs(
    store: Store,
    *,
    run: int | None,
    runs: str | None,
    sweep: str | None,
    space: str | None,
    all_runs: bool,
) -> list[int]:
    """The run ids one of --run, --runs, --sweep, --space or --all names (each checked)."""
    options = {"--run": run, "--runs": runs, "--sweep": sweep, "--space": space}
    given = [f for f, v in options.items() if v is not None] + (["--all"] if all_runs else [])
    if len(given) != 1:
        raise UserError(
            f"pareto: {'choose' if not given else 'give only one of'} the runs with "
            f"{' or '.join(given) if given else 'one of --run, --runs, --sweep, --space, --all'}"
        )
    if run is not None:
        store.require_run(run)
        return [run]
    if runs is not None:
        try:
            ids = sorted({int(p) for p in runs.split(",") if p.strip()})
        except ValueError:
            ids = []
        if not ids:
            raise UserError(f"--runs={runs}: give run ids separated by commas, e.g. 1,3,5")
        missing = [i for i in ids if not store.has_run(i)]
        if missing:
            raise UserError(
                f"--runs={runs}: there is no run {', '.join(map(str, missing))}; "
                "`archsearch runs` lists the runs"
            )
        return ids
    everything = store.list_runs()
    if sweep is not None:
        chosen = [r.id for r in store.sweep_runs(sweep)]
        if not chosen:
            raise UserError(f"--sweep={sweep}: no run belongs to it; `archsearch runs` lists them")
        return sorted(chosen)
    if space is not None:
        chosen = [r.id for r in everything if r.config.space == space]
        if not chosen:
            spaces = sorted({r.config.space for r in everything}) or ["(none)"]
            raise UserError(
                f"--space={space}: no run searched it; the runs searched: {', '.join(spaces)}"
            )
        return sorted(chosen)
    if not everything:
        raise UserError("--all: the database holds no runs yet")
    return sorted(r.id for r in everything)


def _front_across(
    store: Store,
    ids: Sequence[int],
    objectives: Sequence[tuple[str, str]],
    where: str | None,
    *,
    walk: bool,
) -> tuple[list[dict[str, Any]], list[str], Expr | None, int]:
    """The front over several runs' trials, their metrics, the parsed ``where`` and the
    number of architectures the runs hold (after the filters)."""
    metrics = sorted(set().union(*(store.metrics(i) for i in ids)))
    expr = parse_expr(where) if where else None
    filters = {i: run_filter(store.run_config(i), None, walk=walk) for i in ids}
    front, n = store.pareto_across(ids, objectives, filters=filters, where=expr, extra=metrics)
    return front, metrics, expr, n


def run_objectives(
    store: Store, runs: int | Sequence[int], objectives: str | None
) -> list[tuple[str, str]]:
    """``--objectives`` parsed against the runs' metrics, or by default macs:min and the
    (newest) run's own objectives."""
    from archsearch.evaluators import Metric, guess_direction, known_metrics
    from archsearch.search import parse_objectives

    if objectives is not None and not objectives.strip():
        raise UserError(
            "--objectives= is empty; give metric:direction pairs, e.g. macs:min,naswot:max, "
            "or leave it out for the run's own"
        )
    ids = [runs] if isinstance(runs, int) else list(runs)
    config = store.run_config(max(ids))
    # metrics stored by the runs (a table's columns) are objectives too
    stored = {m: Metric(m, guess_direction(m)) for i in ids for m in store.metrics(i)}
    known = {**stored, **known_metrics()}
    text = objectives or config.objectives
    objs: list[tuple[str, str]] = [
        (o.name, o.direction) for o in parse_objectives(text, extra=known)
    ]
    if not objectives and "macs" not in dict(objs):
        objs.insert(0, ("macs", "min"))
    return objs


def run_filter(config: RunConfig, where: str | None, *, walk: bool) -> Expr | None:
    """``--where`` parsed; without ``--walk``, a slimming or contraction run's networks on
    the way down (outside its budget and constraints) are left out too."""
    from archsearch.search import within_target

    expr = parse_expr(where) if where else None
    return expr if walk else within_target(config, expr)


def zoo_points(config: RunConfig, where: Expr | None) -> list[dict[str, Any]]:
    """The zoo's networks at the run's input, scored by its cheap evaluators, filtered."""
    from archsearch import zoo
    from archsearch.evaluators import EVALUATORS
    from archsearch.spaces import Space

    space = Space.from_yaml(config.space_yaml, source=f"<run space {config.space}>")
    evaluators = [EVALUATORS.create(n, **o) for n, o in config.evaluators.items()]
    points = zoo.reference_points(
        evaluators, input_shape=space.input_shape, num_classes=space.num_classes
    )
    return [p for p in points if where is None or where.evaluate(p)]


def with_zoo_points(
    config: RunConfig,
    front: list[dict[str, Any]],
    objectives: Sequence[tuple[str, str]],
    where: Expr | None,
) -> list[dict[str, Any]]:
    """The front and the zoo's networks (filtered by ``where``), sorted by the first objective."""
    points = zoo_points(config, where)
    first, direction = objectives[0]

    def key(row: dict[str, Any]) -> float:
        v = float(row.get(first, math.nan))
        return math.inf if math.isnan(v) else (-v if direction == "max" else v)

    return sorted([{**r, "zoo": None} for r in front] + points, key=key)


def arch_document(arch: Architecture, **extra: Any) -> dict[str, Any]:
    """An architecture as a document: digest, summary, exact cost, ``extra`` fields, spec."""
    from archsearch.cost import count as count_arch

    cost = count_arch(arch)
    return {
        "digest": arch.digest,
        "summary": arch.summary(),
        "cost": {
            **cost.as_dict(),
            "gflops": round(cost.macs / 1e9, 4),
            "flop_convention": FLOP_CONVENTION,
        },
        **extra,
        "spec": arch.to_dict(),
    }
