"""``archsearch run``: search a space under a budget and store every candidate."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from archsearch.cli.common import (
    DbOption,
    Format,
    FormatOption,
    as_flags,
    console,
    emit,
    err_console,
    flag,
    flop_caption,
    handle_errors,
    interrupt_code,
    json_safe,
    progress_bar,
    stop_bar,
)
from archsearch.cli.evaluate import (
    DataOption,
    EpochsOption,
    ProxyBatchOption,
    ProxyInputOption,
    ScoreOption,
    ScoreOptionOption,
    StepsOption,
    TableOption,
)
from archsearch.cli.supernet import resolve_checkpoint
from archsearch.cost import BUDGET_EXAMPLES, FLOP_CONVENTION
from archsearch.cost.metrics import DEFAULT_OBJECTIVE
from archsearch.errors import UserError
from archsearch.limits import MAX_INT
from archsearch.solvers import STRATEGIES

if TYPE_CHECKING:
    from archsearch.db import Claim, Store
    from archsearch.distributed.runner import RayOptions
    from archsearch.search import (
        DEFAULT_OBJECTIVE,
        Outcome,
        Search,
    )
    from archsearch.search import Progress as SearchProgress


@handle_errors
def run(
    ctx: typer.Context,
    space: Annotated[
        str | None,
        typer.Option(help="A built-in space (see `archsearch spaces list`) or a YAML file."),
    ] = None,
    budget: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Upper bound(s), repeatable or comma-separated: {BUDGET_EXAMPLES}. "
            f"{FLOP_CONVENTION}.",
        ),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help=f"Search strategy: {', '.join(STRATEGIES.names())}. (default: evolution)"
        ),
    ] = None,
    objectives: Annotated[
        str | None,
        typer.Option(
            help="Metrics to optimise, e.g. entropy:max or macs:min,entropy:max. "
            f"(default: the first --score's metric, else {DEFAULT_OBJECTIVE})"
        ),
    ] = None,
    score: ScoreOption = None,
    data: DataOption = None,
    epochs: EpochsOption = None,
    steps: StepsOption = None,
    proxy_input: ProxyInputOption = None,
    proxy_batch: ProxyBatchOption = None,
    table: TableOption = None,
    score_option: ScoreOptionOption = None,
    supernet: Annotated[
        str | None,
        typer.Option(
            help="A trained supernet (checkpoint file or id from `archsearch supernet list`): "
            "scores members with inherited weights (the supernet score; the supernet "
            "strategy's default objective)."
        ),
    ] = None,
    constraint: Annotated[
        list[str] | None,
        typer.Option(help='Filter before evaluation, e.g. "rho <= 0.5" (cost or cheap metrics).'),
    ] = None,
    rho: Annotated[
        float | None,
        typer.Option(help="DeepMAD's effectiveness bound: the same as --constraint 'rho <= X'."),
    ] = None,
    trials: Annotated[
        int | None, typer.Option(help="Trials to store in the run. (default: 1000)")
    ] = None,
    time_limit: Annotated[
        float | None, typer.Option(help="Stop after this many seconds of search.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed. (default: 0)")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Candidates per ask/tell round. (default: 32)")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-O", help="Strategy option name=value, e.g. population=64."),
    ] = None,
    init: Annotated[
        list[str] | None,
        typer.Option(
            help="Initial candidates, comma-separated: zoo:<name> (see `archsearch zoo list`) "
            "or spec files; they must be members of the space."
        ),
    ] = None,
    latency: Annotated[
        str | None,
        typer.Option(
            help="Latency bound on --device, e.g. 40ms, predicted from the device's look-up "
            "table (missing entries are profiled on the way; see `archsearch latency profile`)."
        ),
    ] = None,
    latency_column: Annotated[
        str | None,
        typer.Option(
            help="Bound --latency on this --table column (measured latencies, e.g. "
            "lat_ms_raspi4) instead of the device's prediction."
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="Device of --latency, latency@ objectives and --measure-top. (default: cpu)"
        ),
    ] = None,
    device_option: Annotated[
        list[str] | None,
        typer.Option("--device-option", "-D", help="Device option name=value, e.g. threads=2."),
    ] = None,
    measure_top: Annotated[
        int,
        typer.Option(
            min=0, max=10_000, help="Time the first K networks of the final front on --device."
        ),
    ] = 0,
    resume: Annotated[
        int | None,
        typer.Option(
            help="Continue the stored run with this id (after Ctrl-C, a crash or kill -9, on "
            "any machine that reaches the database)."
        ),
    ] = None,
    takeover: Annotated[
        bool,
        typer.Option(
            help="With --resume: take the run over even if its owner's heartbeat is fresh."
        ),
    ] = False,
    workers: Annotated[
        str,
        typer.Option(
            help="Where candidates are evaluated: local (this process) or ray (a Ray cluster: "
            "cheap scores as batched tasks, training as Ray Tune trials)."
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            help="With --workers ray: the cluster (auto, or the head's host:port); none "
            "starts a local Ray."
        ),
    ] = None,
    max_concurrent: Annotated[
        int | None,
        typer.Option(help="With --workers ray: evaluations in flight at once. (default: all)"),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="With --workers ray and --score train: asha stops bad candidates early on "
            "their per-epoch held-out accuracy."
        ),
    ] = None,
    cpus_per_trial: Annotated[
        float, typer.Option(help="With --workers ray: CPUs each evaluation requests.")
    ] = 1.0,
    gpus_per_trial: Annotated[
        float, typer.Option(help="With --workers ray: GPUs each evaluation requests.")
    ] = 0.0,
    retries: Annotated[
        int,
        typer.Option(help="With --workers ray: retries of an evaluation whose worker died."),
    ] = 2,
    top: Annotated[
        int, typer.Option(min=0, max=MAX_INT, help="Rows of the final Pareto table.")
    ] = 15,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Search a space under a budget; every candidate, cost and score goes to the database.

    Ends with the run's Pareto front (GFLOPs against the objectives) and its id. Ctrl-C
    stops cleanly, keeping every finished trial; continue with --resume. FLOP convention:
    one multiply-accumulate counts as one FLOP (ConvNeXt-T = 4.5 GFLOPs).
    """
    from archsearch.db import Store
    from archsearch.search import resume_search
    from archsearch.search.settings import RunSettings

    ray = _ray_options(
        workers, address, max_concurrent, scheduler, cpus_per_trial, gpus_per_trial, retries
    )
    if takeover and resume is None:
        raise UserError("--takeover applies to --resume <run id>; add it or drop --takeover")
    store = Store(db)
    # The options named like run settings are the run settings: declared once, in RunSettings.
    given = {k: v for k, v in ctx.params.items() if k in RunSettings.model_fields}
    if supernet:
        given["supernet"] = resolve_checkpoint(supernet, db)
    if option:
        given["option"] = [_importance(o, db) for o in option]
    settings = RunSettings(**given)
    if resume is not None:
        extra = settings.not_on_resume()
        if extra:
            raise UserError(
                f"--resume continues run {resume} with its stored settings; drop "
                f"{', '.join(map(flag, extra))} (only --trials and --time-limit may change)"
            )
        search = resume_search(store, resume, n_trials=trials, time_limit=time_limit)
        run_id: int | None = resume
    else:
        search = settings.to_search()
        run_id = None
    for note in search.notes:
        err_console.print(f"note: {as_flags(note)}", soft_wrap=True)
    outcome = _run_with_progress(store, search, run_id, ray=ray, db=db, takeover=takeover)
    for digest in outcome.dropped_init:
        err_console.print(f"note: initial candidate {digest[:12]} broke a constraint; skipped")
    _warn_never_finite(search, outcome)
    measured = (
        _measure_front(store, search, outcome, measure_top, device, device_option)
        if measure_top
        else None
    )
    _report(store, search, outcome, top, fmt, measured)
    solution = getattr(search.strategy, "solution", None)
    if solution is not None and fmt is Format.table:
        _report_design(solution)


def _importance(option: str, db: str | None) -> str:
    """``-O importance=<checkpoint or supernet id>``: the learned type probabilities of a
    supernet trained with ``--alphas``, handed to slimming as data."""
    name, _, value = option.partition("=")
    if name.strip() != "importance" or value.strip().startswith("{"):
        return option
    from archsearch.supernet.training import importance

    if not value.strip():
        raise UserError(
            "-O importance=: give a supernet checkpoint trained with --alphas (its file or "
            "its id, see `archsearch supernet list`)"
        )
    path = resolve_checkpoint(value.strip(), db, flag="-O importance")
    return "importance=" + json.dumps(importance(path))


def _measure_front(
    store: Store,
    search: Search,
    outcome: Outcome,
    k: int,
    device: str | None,
    device_option: list[str] | None,
) -> list[dict[str, Any]]:
    """Times the first ``k`` networks of the run's front whole, beside their predictions."""
    from archsearch import profiling
    from archsearch.cost.devices import create_device
    from archsearch.search.settings import parse_options
    from archsearch.spec import Architecture

    latency = [e for e in search.evaluators if e.name.startswith("latency@")]
    name = device or (latency[0].name.split("@", 1)[1] if latency else "cpu")
    if device_option is not None:
        options = parse_options(device_option, what="device_option")
    else:  # the options the run's latency evaluator of that device was given
        options = next((dict(e.config()) for e in latency if e.name == f"latency@{name}"), {})
    dev = create_device(name, **options)
    objectives = [(o.name, o.direction) for o in search.objectives]
    if "macs" not in dict(objectives):
        objectives = [("macs", "min"), *objectives]
    from archsearch.search import within_target

    where = within_target(search.run_config())
    front = store.pareto(outcome.run_id, objectives, where=where)[:k]
    archs = [Architecture.from_json(store.architecture(r["digest"]).spec) for r in front]
    err_console.print(f"timing the first {len(archs)} networks of the front on {dev.name}...")
    report = profiling.check(store, dev, archs, purpose="measure")
    return [
        {
            "digest": r.digest,
            "device": dev.name,
            "macs": r.macs,
            "predicted_ms": r.predicted_ms,
            "measured_ms": r.measured_ms,
            "error_pct": r.error_pct,
        }
        for r in report.rows
    ]


def _report_design(solution: Any) -> None:
    """The network a solver designed: its stages, score, costs and the bounds that bind."""
    from rich.table import Table

    from archsearch.cost import count, format_si

    if not solution.archs:
        return
    arch = solution.archs[0]
    cost = count(arch)
    stages = Table(title=f"designed network {arch.digest[:12]}", caption=flop_caption())
    for c in ("stage", "blocks", "type", "width", "parameters of the first block"):
        stages.add_column(
            c, justify="left" if c in ("type", "parameters of the first block") else "right"
        )
    stages.add_row("stem", "1", arch.stem.type, str(arch.stem.out_channels), _params(arch.stem))
    for i, st in enumerate(arch.stages):
        b = st.blocks[0]
        stages.add_row(f"s{i + 1}", str(st.depth), b.type, str(st.width), _params(b))
    stages.add_row("head", "1", arch.head.type, str(arch.head.out_channels), _params(arch.head))
    console.print(stages)
    bounds = Table(
        title="bounds at the design (binding: within 2%; in the program: the continuous "
        "program's constraint is active; sensitivity: d(score) / d(log bound))"
    )
    for c in ("metric", "value", "bound", "slack", "binding", "in the program", "sensitivity"):
        bounds.add_column(c, justify="right")
    for b in solution.bindings:
        bounds.add_row(
            b.metric,
            f"{b.value:.4g}",
            f"{b.bound:.4g}",
            f"{1 - b.value / b.bound:.1%}" if b.bound else "-",
            "yes" if b.binding else "no",
            "active" if b.program_binding else "-",
            "-" if b.sensitivity is None else f"{b.sensitivity:.4g}",
        )
    console.print(bounds)
    from archsearch.evaluators.entropy import deepmad_entropy

    stats = deepmad_entropy(arch)
    console.print(
        f"deepmad: entropy {stats.score:.1f} (objective {solution.scores[0]:.1f} after the depth "
        f"penalty), rho {stats.rho:.4f}, {format_si(cost.macs)}FLOPs, "
        f"{format_si(cost.params)} params; {solution.programs_solved} convex programs in "
        f"{solution.solve_seconds:.1f}s; {len(solution.archs)} design(s) proposed"
    )
    for note in solution.notes:
        err_console.print(f"note: {as_flags(note)}", soft_wrap=True)


def _params(block: Any) -> str:
    skip = {"act", "norm", "bias", "distill", "pool", "prenorm", "final_act", "layer_scale"}
    return ", ".join(f"{k}={v}" for k, v in block.params.items() if k not in skip)


def _ray_options(
    workers: str,
    address: str | None,
    max_concurrent: int | None,
    scheduler: str | None,
    cpus: float,
    gpus: float,
    retries: int,
) -> RayOptions | None:
    """The validated Ray options, or None to evaluate in this process."""
    from archsearch.distributed.runner import RayOptions

    if workers not in ("local", "ray"):
        raise UserError(f"--workers: {workers!r} must be local or ray")
    options = RayOptions(address, max_concurrent, scheduler, cpus, gpus, retries)
    if workers == "local":
        extra = options.given()
        if extra:
            flags = ", ".join(map(flag, extra))
            raise UserError(f"{flags} need --workers ray; add it or drop them")
        return None
    return options


def _run_with_progress(
    store: Store,
    search: Search,
    run_id: int | None,
    *,
    ray: RayOptions | None = None,
    db: str | None = None,
    takeover: bool = False,
) -> Outcome:
    from archsearch.search import optimize

    first = search.objectives[0]
    # transient: gone when the run ends, so that an error after it stays one line
    bar = progress_bar(
        "[bold]run {task.fields[run]}", suffix="best {task.fields[best]}", transient=True
    )
    task = bar.add_task("search", total=search.n_trials, run="", best="-")
    current = {"run": run_id}
    candidate: dict[str, Any] = {}

    def on_step(label: str, done: int, total: int) -> None:
        if not bar.live.is_started:
            bar.start()
        if candidate.get("label") != label:
            if "task" in candidate:
                bar.remove_task(candidate["task"])
            candidate["label"] = label
            candidate["task"] = bar.add_task(
                "candidate", total=total, run=f"{current['run'] or '-'} candidate {label}", best=""
            )
        bar.update(candidate["task"], completed=done, total=total)

    for ev in search.evaluators:
        if not ev.cheap:
            ev.on_step = on_step

    gate: dict[str, Any] = {}

    def on_check(scored: int, passed: int) -> None:
        # Shown while a constraint on a score is checked (each check computes the score).
        if not err_console.is_terminal:
            return  # a log gets the outcome, not a spinner (and an error stays one line)
        if "task" not in gate:
            if not bar.live.is_started:
                bar.start()
            gate["task"] = bar.add_task("gate", total=None, run="", best="")
        bar.update(
            gate["task"],
            completed=scored,
            run=f"{current['run'] or '-'} constraints: {scored} scored, {passed} met",
        )

    search.gate.on_check = on_check

    def on_progress(p: SearchProgress) -> None:
        current["run"] = p.run_id  # known from the run's creation on (for Ctrl-C's message)
        if not p.done and not bar.live.is_started:
            return
        if not bar.live.is_started:
            bar.start()  # only once trials exist, so that early errors print one line
        best = p.best.get(first.name)
        shown = f"{first.name}={best:.5g}" if best is not None else "-"
        bar.update(task, completed=p.done, run=p.run_id, best=shown)

    def on_claim(claim: Claim) -> None:
        if claim.previous_owner and claim.previous_status == "running":
            err_console.print(
                f"note: took run {run_id} over from {claim.previous_owner} (status running; if "
                "that process still lives, it stops at its next write); "
                f"{claim.requeued} unfinished trial(s) queued again",
                soft_wrap=True,
            )
        elif claim.requeued:
            err_console.print(
                f"note: {claim.requeued} unfinished trial(s) of run {run_id} queued again",
                soft_wrap=True,
            )

    try:
        if ray is None:
            return optimize(
                store,
                search,
                run_id=run_id,
                on_progress=on_progress,
                takeover=takeover,
                on_claim=on_claim,
            )
        from archsearch.distributed.runner import optimize_on_ray

        return optimize_on_ray(
            store,
            search,
            ray,
            db=db,
            run_id=run_id,
            takeover=takeover,
            on_progress=on_progress,
            on_claim=on_claim,
        )
    except KeyboardInterrupt as stop:
        stop_bar(bar)
        rid = current["run"]
        if rid is None:
            err_console.print("interrupted before any trial was stored")
        else:
            err_console.print(
                f"interrupted: finished trials are kept in run {rid}; continue with: "
                f"archsearch run --resume {rid}",
                soft_wrap=True,
            )
        raise typer.Exit(interrupt_code(stop)) from None
    finally:
        stop_bar(bar)


def _warn_never_finite(search: Search, outcome: Outcome) -> None:
    """Warns about scores that were NaN for every trial (a table matching no candidate)."""
    for name in outcome.never_finite:
        ev = next(e for e in search.evaluators if any(m.name == name for m in e.metrics))
        if ev.name == "table":
            cfg = ev.config()
            why = (
                f"--table {cfg['path']} has no row for any of them (key column {cfg['key']}); "
                "is it a table of this space's members?"
            )
        else:
            why = f"the {ev.name} score could not compute it for any of them"
        err_console.print(
            f"warning: {name} is NaN for all {outcome.new_trials} new trials: {why}",
            soft_wrap=True,
        )


def _report(
    store: Store,
    search: Search,
    outcome: Outcome,
    top: int,
    fmt: Format,
    measured: list[dict[str, Any]] | None = None,
) -> None:
    """The run's front: a table and a summary line; with ``-f json`` one document with the run
    id, its outcome and the front (full digests); with ``-f csv`` the front's rows, each with
    the run id."""
    from archsearch.db import display_url
    from archsearch.db.architectures import COST_NAMES

    objectives = [(o.name, o.direction) for o in search.objectives]
    if "macs" not in dict(objectives):
        objectives = [("macs", "min"), *objectives]
    from archsearch.search import within_target

    metrics = store.metrics(outcome.run_id)
    where = within_target(search.run_config())  # a walk's networks on the way left out
    # a run whose every trial failed stored no objective: its front is empty, not an error
    stored = all(n in COST_NAMES or n in metrics for n, _ in objectives)
    front = []
    if stored:
        front = store.pareto(outcome.run_id, objectives, where=where, extra=metrics)
    columns = [
        "trial",
        *dict(objectives),
        "params",
        *[m for m in metrics if m not in dict(objectives)],
        "digest",
    ]
    if fmt is Format.json:
        doc = {
            "run": outcome.run_id,
            "status": outcome.status,
            "reason": outcome.reason,
            "trials": outcome.trials,
            "new_trials": outcome.new_trials,
            "seconds": round(outcome.elapsed, 3),
            "objectives": [f"{n}:{d}" for n, d in objectives],
            "budget": search.budget.as_dict(),
            "flop_convention": FLOP_CONVENTION,
            "front": [{c: json_safe(r.get(c)) for c in columns} for r in front],
        }
        if measured is not None:
            doc["measured"] = [{k: json_safe(v) for k, v in r.items()} for r in measured]
        typer.echo(json.dumps(doc, indent=2))
        return
    if fmt is Format.csv:
        emit([{**r, "run": outcome.run_id} for r in front], ["run", *columns], fmt)
        return
    for row in front:
        row["digest"] = row["digest"][:12]
    emit(
        front[:top],
        columns,
        fmt,
        title=f"Pareto front of run {outcome.run_id} "
        f"({', '.join(f'{n}:{d}' for n, d in objectives)}); {len(front)} trials",
        caption=flop_caption(),
    )
    if measured is not None:
        emit(
            [{**r, "digest": r["digest"][:12]} for r in measured],
            ["digest", "macs", "predicted_ms", "measured_ms", "error_pct"],
            fmt,
            title=f"front of run {outcome.run_id} timed whole",
        )
    console.print(
        f"run {outcome.run_id}: {outcome.status} ({outcome.reason}), {outcome.trials} trials "
        f"stored ({outcome.new_trials} new) in {outcome.elapsed:.1f}s; budget "
        f"{search.budget}; database {display_url(store.url)}\n"
        f"next: archsearch pareto --run {outcome.run_id}    archsearch show <digest>"
    )
    if front:
        best = str(front[0]["digest"])[:12]
        console.print(
            f"export the front's first network: archsearch export {best} --out {best}.py "
            "(PyTorch source; .onnx, .pt for ONNX, TorchScript)\n"
            f"plot the front: archsearch plot pareto --run {outcome.run_id} --with-zoo "
            "--out front.png (.svg, or .html: interactive)"
        )
