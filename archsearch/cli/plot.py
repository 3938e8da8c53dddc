"""``archsearch plot``: a run's front, its history, latency predicted vs measured, runs compared.

The file's suffix chooses the output: .png or .svg (matplotlib), .html (plotly: interactive,
self-contained). The work is :mod:`archsearch.plots`; this module reads the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from archsearch.cli.common import DbOption, err_console, handle_errors
from archsearch.cli.latency import DeviceArg, DeviceOptions
from archsearch.errors import UserError

app = typer.Typer(
    help="Figures of results: .png/.svg (matplotlib) or .html (plotly, interactive).",
    no_args_is_help=True,
)

RunOption = Annotated[int, typer.Option("--run", help="Run id (see `archsearch runs`).")]
ObjectivesOption = Annotated[
    str | None,
    typer.Option(
        help="Two objectives, x then y, e.g. macs:min,naswot:max. (default: macs:min "
        "and the run's first objective)"
    ),
]
WhereOption = Annotated[
    str | None, typer.Option(help='Filter, e.g. "params < 5M" (k/M/G/T suffixes).')
]


def _two(objs: list[tuple[str, str]], given: str | None) -> list[tuple[str, str]]:
    if len(objs) < 2:
        raise UserError(
            f"--objectives={given or ''}: a plot needs two objectives, x then y, e.g. "
            "macs:min,naswot:max"
        )
    return objs[:2]


@app.command("pareto")
@handle_errors
def pareto(
    run: RunOption,
    objectives: ObjectivesOption = None,
    color: Annotated[
        str | None, typer.Option(help="Colour the trials by this metric (e.g. params).")
    ] = None,
    with_zoo: Annotated[
        bool, typer.Option(help="The zoo's networks beside the front, labelled.")
    ] = False,
    where: WhereOption = None,
    walk: Annotated[
        bool, typer.Option("--walk", help="Slimming/contraction: the networks on the way too.")
    ] = False,
    out: Annotated[Path, typer.Option(help="The file: .png, .svg or .html.")] = Path("pareto.png"),
    db: DbOption = None,
) -> None:
    """Every trial of a run, its Pareto front and (--with-zoo) the seed networks."""
    from archsearch import plots
    from archsearch.db import Store
    from archsearch.pareto import front_rows
    from archsearch.search.queries import run_filter, run_objectives, zoo_points

    plots.check_suffix(out)
    store = Store(db)
    info = store.get_run(run)
    objs = _two(run_objectives(store, run, objectives), objectives)
    expr = run_filter(info.config, where, walk=walk)
    wanted = [m for m, _ in objs] + ([color] if color else [])
    rows = store.results(run, metrics=wanted, where=expr)
    front = front_rows(rows, objs)
    zoo = [{**p, "name": p["zoo"]} for p in zoo_points(info.config, expr)] if with_zoo else []
    figure = plots.pareto_figure(
        rows,
        front,
        objs,
        title=f"run {run} ({info.config.space}, {info.config.strategy})",
        color=color,
        zoo=zoo,
    )
    plots.render(figure, out)
    err_console.print(
        f"plot: {out} ({len(rows)} trials, a front of {len(front)}"
        + (f", {len(zoo)} zoo networks" if with_zoo else "")
        + ")",
        soft_wrap=True,
    )


@app.command("history")
@handle_errors
def history(
    run: RunOption,
    metric: Annotated[
        str | None,
        typer.Option(help="The score to follow, e.g. naswot:max. (default: the run's first)"),
    ] = None,
    time: Annotated[
        bool, typer.Option("--time", help="Against seconds since the first trial finished.")
    ] = False,
    out: Annotated[Path, typer.Option(help="The file: .png, .svg or .html.")] = Path(
        "history.png"
    ),
    db: DbOption = None,
) -> None:
    """Every trial's score against its number (or time) and the best so far."""
    from archsearch import plots
    from archsearch.db import Store
    from archsearch.search.queries import run_objectives

    plots.check_suffix(out)
    store = Store(db)
    info = store.get_run(run)
    if metric is not None and not metric.strip():
        raise UserError("--metric= is empty; give a score, e.g. naswot:max, or leave it out")
    objectives = metric or ",".join(info.config.objectives)
    (name, direction), *_ = run_objectives(store, run, objectives)
    rows = store.results(run, metrics=[name], times=True)
    stamps = [r["finished_at"] for r in rows if r.get("finished_at") is not None]
    start = min(stamps, default=None)
    for r in rows:
        at = r.get("finished_at")
        r["seconds"] = (at - start).total_seconds() if at is not None and start else None
    figure = plots.history_figure(
        rows,
        name,
        direction,
        title=f"run {run} ({info.config.space}, {info.config.strategy}): {name}:{direction}",
        x="seconds" if time else "trial",
    )
    plots.render(figure, out)
    err_console.print(f"plot: {out} ({len(rows)} trials)", soft_wrap=True)


@app.command("latency")
@handle_errors
def latency(
    device: DeviceArg = "cpu",
    device_option: DeviceOptions = None,
    purpose: Annotated[
        str | None,
        typer.Option(help="Only the measurements of: check, calibration, measure."),
    ] = None,
    out: Annotated[Path, typer.Option(help="The file: .png, .svg or .html.")] = Path(
        "latency.png"
    ),
    db: DbOption = None,
) -> None:
    """Predicted against measured whole-network latency on this machine's device (`latency
    check`, `--calibrate` and `latency measure` store the measurements)."""
    from archsearch import plots
    from archsearch.cli.latency import make_device
    from archsearch.db import Store

    plots.check_suffix(out)
    dev = make_device(device, device_option)
    rows = Store(db).network_latencies(dev.key, purpose=purpose)
    if not rows:
        raise UserError(
            f"--device={device}: no whole-network measurements stored for {dev.name} "
            f"[{dev.key}]; run `archsearch latency check` (or --calibrate, latency measure) "
            "on it first"
        )
    plots.render(plots.latency_figure(rows, title=f"{dev.name} [{dev.key}]"), out)
    err_console.print(f"plot: {out} ({len(rows)} measurements)", soft_wrap=True)


@app.command("compare")
@handle_errors
def compare(
    run: Annotated[list[int], typer.Option("--run", help="Two or more runs: --run 1 --run 3.")],
    objectives: ObjectivesOption = None,
    where: WhereOption = None,
    out: Annotated[Path, typer.Option(help="The file: .png, .svg or .html.")] = Path(
        "compare.png"
    ),
    db: DbOption = None,
) -> None:
    """The Pareto fronts of several runs on the same axes."""
    from archsearch import plots
    from archsearch.db import Store
    from archsearch.search.queries import run_filter, run_objectives

    plots.check_suffix(out)
    if len(set(run)) < 2:
        raise UserError(f"--run={','.join(map(str, run))}: compare needs two runs or more")
    store = Store(db)
    objs = _two(run_objectives(store, run[0], objectives), objectives)
    fronts = {}
    for r in dict.fromkeys(run):
        info = store.get_run(r)
        front = store.pareto(r, objs, where=run_filter(info.config, where, walk=False))
        fronts[f"run {r} ({info.config.strategy})"] = [{**row, "run": r} for row in front]
    title = f"Pareto fronts of runs {', '.join(map(str, dict.fromkeys(run)))}"
    plots.render(plots.compare_figure(fronts, objs, title=title), out)
    sizes = ", ".join(str(len(f)) for f in fronts.values())
    err_console.print(f"plot: {out} (fronts of {sizes})", soft_wrap=True)
