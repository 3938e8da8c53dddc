"""``archsearch runs``, ``pareto`` and ``show``: read what the store holds."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from archsearch.cli.common import (
    DbOption,
    DocFormat,
    Format,
    FormatOption,
    emit,
    err_console,
    flop_caption,
    handle_errors,
)
from archsearch.cost import FLOP_CONVENTION, Budget
from archsearch.errors import UserError
from archsearch.expr import Expr, parse_expr
from archsearch.limits import MAX_INT
from archsearch.spec import Architecture

if TYPE_CHECKING:
    from archsearch.db import RunConfig, Store

runs_app = typer.Typer(
    help="The runs in the database (`archsearch runs`), stale ones (--stale), deletion.",
    invoke_without_command=True,
)


@runs_app.callback(invoke_without_command=True)
@handle_errors
def runs(
    ctx: typer.Context,
    db: DbOption = None,
    sweep: Annotated[str | None, typer.Option(help="Only the runs of this sweep.")] = None,
    stale: Annotated[
        bool,
        typer.Option(
            "--stale",
            help="Only runs marked running whose owner is gone (no heartbeat for "
            "$ARCHSEARCH_STALE_AFTER s); continue one with run --resume ID.",
        ),
    ] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """List the runs in the database, newest first (also while they run: trials in flight
    count as active). A run whose owner died shows as stale."""
    from archsearch.db import Store, is_stale
    from archsearch.db.heartbeat import STALE_AFTER

    if ctx.invoked_subcommand is not None:
        return
    store = Store(db)
    rows = []
    for r in store.sweep_runs(sweep)[::-1] if sweep else store.list_runs():
        c = r.config
        dead = is_stale(r, STALE_AFTER)
        if stale and not dead:
            continue
        rows.append(
            {
                "id": r.id,
                "status": "stale" if dead else r.status,
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
                "heartbeat": r.heartbeat_at.isoformat(timespec="seconds")
                if r.heartbeat_at
                else "-",
                "created": r.created_at.isoformat(timespec="seconds"),
                "host": r.host,
            }
        )
    columns = [
        "id",
        "status",
        "space",
        "strategy",
        "objectives",
        "budget",
        "constraints",
        "trials",
        "failed",
        "pruned",
        "active",
        "seed",
        "sweep",
        "created",
        "host",
        "owner",
        "heartbeat",
    ]
    hidden = ("host", "owner", "heartbeat")
    shown = [c for c in columns if c not in hidden] if fmt is Format.table else columns
    caption = (
        "stale: marked running, but its owner is gone; continue it with "
        "`archsearch run --resume ID` or remove it with `archsearch runs delete ID`"
        if any(r["status"] == "stale" for r in rows) and fmt is Format.table
        else None
    )
    emit(rows, shown, fmt, title="stale runs" if stale else "runs", caption=caption)


@runs_app.command("delete")
@handle_errors
def delete_run(
    run_id: Annotated[int, typer.Argument(help="The run's id (see `archsearch runs`).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOption = None,
) -> None:
    """Delete a run with its trials and scores (architectures, latency tables and supernets,
    which other runs may use, stay). Refused while the run is driven by a live process."""
    from archsearch.db import Store, is_stale
    from archsearch.db.heartbeat import STALE_AFTER

    store = Store(db)
    info = store.get_run(run_id)
    if info.status == "running" and not is_stale(info, STALE_AFTER):
        raise UserError(
            f"runs delete {run_id}: the run is being driven by {info.owner}; stop that process "
            "first (Ctrl-C or kill), then delete it"
        )
    what = (
        f"run {run_id} ({info.config.space}, {info.config.strategy}, {info.status}) with its "
        f"{info.n_finished + info.n_active} trials and their scores"
    )
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(
                f"runs delete {run_id}: confirm with --yes (stdin is not a terminal to ask on)"
            )
        typer.confirm(f"Delete {what}?", abort=True, err=True)
    done = store.delete_run(run_id)
    err_console.print(
        f"deleted {what}: {done.trials} trials, {done.scores} scores; "
        f"{done.architectures_kept} architectures kept (shared by digest)",
        soft_wrap=True,
    )


@handle_errors
def pareto(
    run: Annotated[
        int | None, typer.Option("--run", help="Run id (see `archsearch runs`).")
    ] = None,
    runs: Annotated[
        str | None,
        typer.Option(help="Several runs, e.g. 1,3,5: one front over all their trials."),
    ] = None,
    sweep: Annotated[str | None, typer.Option(help="Every run of this sweep.")] = None,
    space: Annotated[
        str | None, typer.Option(help="Every run of this space (e.g. hybrid).")
    ] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Every run in the database.")] = False,
    objectives: Annotated[
        str | None,
        typer.Option(
            help="e.g. macs:min,entropy:max. (default: macs:min and the (newest) run's objectives)"
        ),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(help='Filter, e.g. "params < 5M and rho <= 0.5" (k/M/G/T suffixes).'),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, max=MAX_INT, help="Show at most this many rows.")
    ] = None,
    with_zoo: Annotated[
        bool,
        typer.Option(help="Show the zoo's networks beside the front, scored by cheap scores."),
    ] = False,
    walk: Annotated[
        bool,
        typer.Option(
            "--walk",
            help="Slimming and contraction runs: include the networks on the way down that "
            "break the run's budget/constraints (left out by default).",
        ),
    ] = False,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """The Pareto front: trials no other trial beats on every objective.

    Of one run (--run), or of several (--runs, --sweep, --space, --all): their architectures
    deduplicated by digest, each metric taken from the newest run that measured it, the run
    named in each row. GFLOPs count one multiply-accumulate as one FLOP. With --with-zoo the
    seed networks (`archsearch zoo list`) appear beside the front, named in the zoo column.
    """
    from archsearch.db import Store

    store = Store(db)
    ids = select_runs(store, run=run, runs=runs, sweep=sweep, space=space, all_runs=all_runs)
    newest = store.get_run(max(ids))
    objs = run_objectives(store, ids, objectives)
    names = list(dict(objs))
    if run is not None:
        expr = run_filter(newest.config, where, walk=walk)
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
        front = with_zoo_points(newest.config, front, objs, expr)
        columns.insert(len(lead), "zoo")
    if fmt is Format.table:
        for row in front:
            row["digest"] = row["digest"][:12]
    emit(
        front,
        columns,
        fmt,
        title=f"{what}: Pareto front over {', '.join(f'{n}:{d}' for n, d in objs)}"
        + (f" where {where}" if where else ""),
        caption=flop_caption(),
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
        store.get_run(run)
        return [run]
    if runs is not None:
        try:
            ids = sorted({int(p) for p in runs.split(",") if p.strip()})
        except ValueError:
            ids = []
        if not ids:
            raise UserError(f"--runs={runs}: give run ids separated by commas, e.g. 1,3,5")
        missing = sorted(set(ids) - {r.id for r in store.list_runs()})
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
    filters = {i: run_filter(store.get_run(i).config, None, walk=walk) for i in ids}
    front, n = store.pareto_across(ids, objectives, filters=filters, where=expr, extra=metrics)
    return front, metrics, expr, n


@handle_errors
def show(
    digest: Annotated[str, typer.Argument(help="A digest or its first characters (>= 6).")],
    db: DbOption = None,
    fmt: Annotated[
        DocFormat, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)
    ] = DocFormat.yaml,
) -> None:
    """One architecture: its spec, exact costs and every score stored for it."""
    from archsearch.db import Store

    store = Store(db)
    info = store.architecture(digest)
    emit_document(arch_document(Architecture.from_json(info.spec), trials=info.trials), fmt)


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


def emit_document(doc: dict[str, Any], fmt: DocFormat) -> None:
    """Prints a document as YAML or JSON (NaN as null)."""
    if fmt is DocFormat.json:
        typer.echo(json.dumps(doc, indent=2, default=lambda v: None))
    else:
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=99)
        typer.echo(text, nl=False)


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
    info = store.get_run(max(ids))
    # metrics stored by the runs (a table's columns) are objectives too
    stored = {m: Metric(m, guess_direction(m)) for i in ids for m in store.metrics(i)}
    known = {**stored, **known_metrics()}
    text = objectives or info.config.objectives
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
    import math

    points = zoo_points(config, where)
    first, direction = objectives[0]

    def key(row: dict[str, Any]) -> float:
        v = float(row.get(first, math.nan))
        return math.inf if math.isnan(v) else (-v if direction == "max" else v)

    return sorted([{**r, "zoo": None} for r in front] + points, key=key)


@handle_errors
def count(
    spec: Annotated[
        str, typer.Argument(help="An architecture spec file (.json, .yaml) or - for stdin.")
    ],
    per_block: Annotated[bool, typer.Option(help="One row per block.")] = True,
    fmt: FormatOption = Format.table,
) -> None:
    """Exact params, MACs (1 MAC = 1 FLOP) and activations of an architecture spec, no torch."""
    import sys

    from archsearch.cost import count as count_arch
    from archsearch.cost import count_layers
    from archsearch.evaluators import deepmad_entropy

    if spec == "-":
        from archsearch.files import MAX_TEXT_BYTES, decode

        raw = sys.stdin.buffer.read(MAX_TEXT_BYTES + 1)
        if len(raw) > MAX_TEXT_BYTES:
            raise UserError(f"count -: the spec on stdin is larger than {MAX_TEXT_BYTES:,} bytes")
        arch = Architecture.from_json(decode(raw, what="count -"))
    else:
        arch = Architecture.load(spec)
    total = count_arch(arch)
    rows: list[dict[str, Any]] = []
    if per_block:
        rows = [{"block": p, "type": t, **c.as_dict()} for p, t, c in count_layers(arch)]
    stats = deepmad_entropy(arch)
    rows.append(
        {
            "block": "total",
            "type": arch.digest[:12],
            **total.as_dict(),
            "entropy": stats.score,
            "rho": stats.rho,
        }
    )
    emit(
        rows,
        ["block", "type", "params", "macs", "activations", "entropy", "rho"],
        fmt,
        title=arch.summary(),
        caption=flop_caption(),
    )
