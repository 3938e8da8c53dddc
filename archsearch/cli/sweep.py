"""``archsearch sweep``: many runs from one YAML file, on a Ray cluster, into one database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from archsearch.cli.common import (
    DbOption,
    Format,
    FormatOption,
    console,
    emit,
    err_console,
    handle_errors,
    progress_bar,
    stop_bar,
)
from archsearch.errors import UserError

if TYPE_CHECKING:
    pass


@handle_errors
def sweep(
    file: Annotated[str, typer.Argument(help="The sweep file (YAML: name, base, grid, runs).")],
    address: Annotated[
        str | None,
        typer.Option(
            help="The Ray cluster (auto, or the head's host:port); none starts a local one."
        ),
    ] = None,
    max_concurrent: Annotated[
        int | None, typer.Option(help="Runs executing at once. (default: as the cluster fits)")
    ] = None,
    cpus_per_run: Annotated[float, typer.Option(help="CPUs each run requests.")] = 1.0,
    gpus_per_run: Annotated[float, typer.Option(help="GPUs each run requests.")] = 0.0,
    retries: Annotated[
        int,
        typer.Option(help="Retries of a run whose worker died (it resumes from the database)."),
    ] = 2,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Only check the file and list its runs; start nothing (no Ray)."
        ),
    ] = False,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Run every point of a sweep file as a run on Ray, all writing to one database.

    Running the same file again skips the finished runs and resumes the others. A failed run
    does not stop the others; its error is stored with it (see `archsearch runs --sweep NAME`).
    FLOP convention: one multiply-accumulate counts as one FLOP (ConvNeXt-T = 4.5 GFLOPs).
    """
    from archsearch.db import Store, display_url
    from archsearch.distributed import connect, worker_url
    from archsearch.distributed.sweep import load_sweep, prepare, run_sweep

    if max_concurrent is not None and max_concurrent < 1:
        raise UserError(f"--max-concurrent: {max_concurrent} must be at least 1")
    if retries < 0:
        raise UserError(f"--retries: {retries} must be 0 or more")
    if not (cpus_per_run > 0 and gpus_per_run >= 0):  # NaN fails too
        raise UserError(
            f"--cpus-per-run {cpus_per_run} / --gpus-per-run {gpus_per_run}: CPUs must be "
            "positive and GPUs not negative"
        )
    checking = progress_bar("[bold]checking the sweep's runs", transient=True)
    check_task = checking.add_task("check", total=None)

    def on_point(done: int, total: int) -> None:
        if done == 1 and total > 20:  # shown only where checking takes a while
            checking.start()
        checking.update(check_task, completed=done, total=total)

    try:
        spec = load_sweep(file, on_point=on_point)
    finally:
        stop_bar(checking)
    if check:
        rows = [
            {
                "point": i,
                "where": p.where,
                "settings": " ".join(f"{k}={v}" for k, v in sorted(p.settings.items())),
            }
            for i, p in enumerate(spec.points)
        ]
        emit(rows, ["point", "where", "settings"], fmt, title=f"sweep {spec.name}: checked")
        if fmt is Format.table:
            console.print(f"sweep {spec.name}: {len(rows)} runs, all valid; nothing started")
        return
    cluster = connect(address)
    url = worker_url(db, cluster)
    store = Store(url)
    ids = prepare(store, spec)
    err_console.print(
        f"sweep {spec.name}: {len(ids)} runs (ids {min(ids)}-{max(ids)}) in "
        f"{display_url(store.url)}; Ray: {cluster.nodes} node(s), {cluster.cpus:g} CPUs",
        soft_wrap=True,
    )
    bar = progress_bar(f"[bold]sweep {spec.name}", suffix="{task.fields[trials]} trials")
    task = bar.add_task("runs", total=len(ids), trials=0)
    with bar:
        results = run_sweep(
            store,
            url,
            spec,
            ids,
            max_concurrent=max_concurrent,
            cpus=cpus_per_run,
            gpus=gpus_per_run,
            retries=retries,
            on_update=lambda done, trials: bar.update(task, completed=done, trials=trials),
        )
    rows = [
        {
            "run": r.run_id,
            "status": r.status,
            "trials": r.trials,
            "settings": " ".join(f"{k}={v}" for k, v in sorted(r.point.items())),
            "error": (r.error or "-").splitlines()[0][:120],
        }
        for r in results
    ]
    emit(rows, ["run", "status", "trials", "settings", "error"], fmt, title=f"sweep {spec.name}")
    failed = [r for r in results if r.status != "finished"]
    if fmt is Format.table:
        console.print(
            f"sweep {spec.name}: {len(results) - len(failed)} of {len(results)} runs finished; "
            "next: archsearch runs --sweep " + spec.name + "    archsearch pareto --run <id>"
        )
    if failed:
        raise typer.Exit(1)
