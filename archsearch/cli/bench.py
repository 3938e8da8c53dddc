"""``archsearch bench search``: strategies x trial budgets x seeds, measured against a table."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from archsearch.cli.common import (
    Format,
    FormatOption,
    console,
    emit,
    handle_errors,
    progress_bar,
    stop_bar,
)
from archsearch.cost import BUDGET_EXAMPLES, Budget
from archsearch.errors import UserError
from archsearch.limits import MAX_BATCH, MAX_INT

app = typer.Typer(
    help="Measure search strategies against ground truth (tabular benchmarks).",
    no_args_is_help=True,
)


def _ints(text: str, what: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(
            f"{what}: {text!r} must be integers, comma-separated, e.g. 100,300"
        ) from None
    if not out:
        raise UserError(f"{what}: give at least one number, e.g. 100,300")
    return out


@app.command()
@handle_errors
def search(
    space: Annotated[str, typer.Option(help="A built-in space (e.g. nb201) or a YAML file.")],
    table: Annotated[
        str,
        typer.Option(
            help="The ground-truth CSV: an arch_str key column and numeric columns (e.g. "
            "../shared/bench/nb201_cifar_latency.csv)."
        ),
    ],
    strategies: Annotated[
        str, typer.Option(help="Strategies, comma-separated.")
    ] = "random,evolution,optuna:tpe,optuna:nsga2",
    trials: Annotated[str, typer.Option(help="Trial budgets, comma-separated.")] = "100,300",
    seeds: Annotated[
        int, typer.Option(min=1, max=10_000, help="Runs per strategy and budget.")
    ] = 20,
    first_seed: Annotated[
        int,
        typer.Option(
            min=0,
            max=MAX_INT - 10_000,
            help="Seeds run from this one: first_seed .. first_seed + seeds - 1.",
        ),
    ] = 0,
    objectives: Annotated[
        str | None,
        typer.Option(
            help="Table columns or exact costs, e.g. cifar10_test:max,lat_ms_pixel3:min; "
            "the first is scored by regret. (default: the table's first metric)"
        ),
    ] = None,
    constraint: Annotated[
        list[str] | None,
        typer.Option(help='Feasibility bound(s), e.g. "lat_ms_raspi4 <= 25.68".'),
    ] = None,
    latency: Annotated[
        str | None, typer.Option(help="Bound on --latency-column, e.g. 25.68ms.")
    ] = None,
    latency_column: Annotated[
        str | None, typer.Option(help="The table column --latency bounds, e.g. lat_ms_raspi4.")
    ] = None,
    budget: Annotated[
        list[str] | None, typer.Option(help=f"MACs/params bounds: {BUDGET_EXAMPLES}.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=MAX_BATCH, help="Candidates per ask/tell round.")
    ] = 10,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-O",
            help="Strategy option name=value, given to every strategy that takes it, or "
            "strategy.name=value for one (evolution.population=20).",
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(help="Keep the runs in this database (default: a temporary one)."),
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Run each strategy for each trial budget and seed on a table; print regret, queries to
    the optimum and (several objectives) hypervolume ratio, side by side.

    Regret: best feasible value of the first objective minus the best found. Hypervolume:
    the front found over the true front, from the worst feasible value of each objective.
    """
    from archsearch.benchmark import bench_search
    from archsearch.cost.latency import parse_latency
    from archsearch.search.settings import parse_options
    from archsearch.spaces import load_space

    constraints = list(constraint or [])
    if latency is not None or latency_column is not None:
        if latency is None or latency_column is None:
            raise UserError(
                "--latency and --latency-column go together: the bound and the table column "
                "it applies to, e.g. --latency 25.68ms --latency-column lat_ms_raspi4"
            )
        constraints.append(f"{latency_column} <= {parse_latency(latency)!r}")
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    budgets = _ints(trials, "--trials")
    total = len(names) * len(budgets) * seeds
    bar = progress_bar("bench {task.fields[now]}")
    task = bar.add_task("bench", total=total, now="")

    def on_run(q: Any) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, advance=1, now=f"{q.strategy} {q.trials} seed {q.seed}")

    try:
        truth, summaries = bench_search(
            space=load_space(space),
            table_options={"path": table},
            strategies=names,
            trials=budgets,
            seeds=seeds,
            first_seed=first_seed,
            objectives=objectives,
            budget=Budget.parse(budget or []),
            constraints=constraints,
            batch_size=batch_size,
            strategy_options=parse_options(option or []),
            db=db,
            on_run=on_run,
        )
    finally:
        stop_bar(bar)
    first = truth.objectives[0]
    multi = len(truth.objectives) > 1
    rows = [s.row() for s in summaries]
    columns = [
        "strategy",
        "trials",
        "seeds",
        "regret_mean",
        "regret_std",
        "regret_median",
        "regret_max",
        "found_optimum",
        "queries_to_optimum",
        *(["hv_ratio_mean", "hv_ratio_std"] if multi else []),
        "seconds_per_run",
    ]
    where = " and ".join(constraints) or "no constraint"
    emit(
        rows,
        columns,
        fmt,
        title=f"search quality on {space} ({', '.join(map(str, truth.objectives))}; {where})",
    )
    if fmt is Format.table:
        console.print(
            f"ground truth: {truth.members} members in the table, {truth.feasible} feasible; "
            f"best {first.name} {truth.best:.4g} ({', '.join(truth.best_keys[:2])})"
            + (
                f"; true front {len(truth.front)} points, hypervolume {truth.hypervolume:.6g} "
                f"from reference {_reference(truth)}"
                if multi
                else ""
            ),
            soft_wrap=True,
        )
        exact = ", ".join(f"{truth.random_regret(n):.4g} at {n}" for n in budgets)
        console.print(
            f"uniform random search, exact expected regret from the table: {exact} queries",
            soft_wrap=True,
        )


def _reference(truth: Any) -> str:
    parts = []
    for o, v in zip(truth.objectives, truth.reference, strict=True):
        parts.append(f"{o.name}={-v if o.direction == 'max' else v:.4g}")
    return ", ".join(parts)
