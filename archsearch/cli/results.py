"""``archsearch runs``, ``pareto`` and ``show``: read what the store holds."""

from __future__ import annotations

import json
import sys
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
from archsearch.errors import UserError
from archsearch.limits import MAX_INT
from archsearch.spec import Architecture

if TYPE_CHECKING:
    pass

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
    from archsearch.db import Store
    from archsearch.db.heartbeat import STALE_AFTER

    if ctx.invoked_subcommand is not None:
        return
    from archsearch.search.queries import run_row

    store = Store(db)
    chosen = store.sweep_runs(sweep)[::-1] if sweep else store.list_runs()
    rows = [run_row(r, stale_after=STALE_AFTER) for r in chosen]
    if stale:
        rows = [r for r in rows if r["status"] == "stale"]
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
    from archsearch.search import queries

    answer = queries.front(
        Store(db),
        run=run,
        runs=runs,
        sweep=sweep,
        space=space,
        all_runs=all_runs,
        objectives=objectives,
        where=where,
        walk=walk,
        with_zoo=with_zoo,
        limit=limit,
    )
    front, columns = answer.rows, answer.columns
    if fmt is Format.table:
        for row in front:
            row["digest"] = row["digest"][:12]
    emit(front, columns, fmt, title=answer.title, caption=flop_caption())


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
    from archsearch.search.queries import arch_document

    store = Store(db)
    info = store.architecture(digest)
    emit_document(arch_document(Architecture.from_json(info.spec), trials=info.trials), fmt)


def emit_document(doc: dict[str, Any], fmt: DocFormat) -> None:
    """Prints a document as YAML or JSON (NaN as null)."""
    if fmt is DocFormat.json:
        typer.echo(json.dumps(doc, indent=2, default=lambda v: None))
    else:
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=99)
        typer.echo(text, nl=False)


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
    # DeepMAD's entropy is that of one chain of layers: not given for several streams
    one_stream = not arch.branched
    stats = deepmad_entropy(arch) if one_stream else None
    rows.append(
        {
            "block": "total",
            "type": arch.digest[:12],
            **total.as_dict(),
            "entropy": stats.score if stats else None,
            "rho": stats.rho if stats else None,
        }
    )
    emit(
        rows,
        ["block", "type", "params", "macs", "activations", "entropy", "rho"],
        fmt,
        title=arch.summary(),
        caption=flop_caption(),
    )
