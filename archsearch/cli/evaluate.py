"""``archsearch evaluators`` and ``evaluate``, and the score options ``run`` shares with them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from archsearch.cli.common import (
    DbOption,
    Format,
    FormatOption,
    emit,
    flop_caption,
    handle_errors,
    interrupt_code,
    progress_bar,
    stop_bar,
)
from archsearch.cost.metrics import DEFAULT_SCORE
from archsearch.evaluators import COST_METRICS, EVALUATORS, Evaluator
from archsearch.evaluators.proxies import DEFAULT_BATCH

# Generated from the registries: a plugin's score or device shows here without an edit.
_SCORES = ", ".join(
    f"{n} (the default)" if n == DEFAULT_SCORE else n
    for n in [*EVALUATORS.names(), *(m.name for m in COST_METRICS)]
)
ScoreOption = Annotated[
    list[str] | None,
    typer.Option(
        help=f"Score(s), comma-separated or repeated: {_SCORES}, table:COLUMN (see `archsearch "
        "evaluators`); without --objectives the first one is optimised.",
    ),
]
DataOption = Annotated[
    str | None,
    typer.Option(
        help="Dataset of train (and of the proxies' batch): idx:DIR (MNIST-format), npz:FILE "
        "(arrays x, y) or folder:DIR (a sub-folder per class)."
    ),
]
EpochsOption = Annotated[
    float | None, typer.Option(help="train: epochs per candidate. (default: 1)")
]
StepsOption = Annotated[
    int | None, typer.Option(help="train: stop each candidate after this many steps.")
]
ProxyInputOption = Annotated[
    str | None,
    typer.Option(
        help="Proxies: input CxHxW of the proxy pass, e.g. 3x64x64 (default: the space's)."
    ),
]
ProxyBatchOption = Annotated[
    int | None, typer.Option(help=f"Proxies: images per proxy pass. (default: {DEFAULT_BATCH})")
]
TableOption = Annotated[
    str | None,
    typer.Option(
        help="A CSV table of scores (score table): a 'digest' or 'arch_str' (NAS-Bench-201) "
        "key column and numeric columns, each a metric (e.g. cifar10_test, lat_ms_pixel3)."
    ),
]
ScoreOptionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--score-option",
        "-S",
        help="Score option name=value, e.g. lr=0.001, train_size=10000, seed=1; given to "
        "every score that takes it.",
    ),
]


@handle_errors
def evaluators(fmt: FormatOption = Format.table) -> None:
    """List the scores: name, metrics with direction, cheap or expensive, and what each is."""
    rows: list[dict[str, Any]] = [
        {
            "score": m.name,
            "metric": m.name,
            "direction": m.direction,
            "cost": "analytic",
            "doc": m.doc,
        }
        for m in COST_METRICS
    ]
    for name in EVALUATORS.names():
        cls = EVALUATORS.get(name)
        if cls.dynamic_metrics:
            rows.append(
                {
                    "score": name,
                    "metric": "<column>",
                    "direction": "by name",
                    "cost": "cheap" if cls.cheap else "expensive",
                    "doc": "each numeric column of --table (lat_*/*_ms/loss/err: min, else max)",
                }
            )
        for i, m in enumerate(cls.metrics):
            rows.append(
                {
                    "score": name if i == 0 else "",
                    "metric": m.name,
                    "direction": m.direction,
                    "cost": "cheap" if cls.cheap else "expensive",
                    "doc": m.doc,
                }
            )
    emit(
        rows,
        ["score", "metric", "direction", "cost", "doc"],
        fmt,
        title="scores (--score; metrics for --objectives, --constraint, pareto)",
    )


@handle_errors
def evaluate(
    refs: Annotated[
        list[str],
        typer.Argument(help="Digests (or their first 6+ characters), spec files or zoo:NAME."),
    ],
    score: ScoreOption = None,
    data: DataOption = None,
    epochs: EpochsOption = None,
    steps: StepsOption = None,
    proxy_input: ProxyInputOption = None,
    proxy_batch: ProxyBatchOption = None,
    table: TableOption = None,
    score_option: ScoreOptionOption = None,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Score given architectures with any evaluators, and store the scores as a run.

    Prints one row per architecture (exact cost and every metric) and records them in the
    database as a run of strategy ``evaluate`` (see `archsearch runs`, `pareto --run`).
    FLOP convention: one multiply-accumulate counts as one FLOP.
    """
    from archsearch.db import RunConfig, Store
    from archsearch.search import (
        DEFAULT_SCORE,
        create_evaluators,
        resolve_init,
        score_metric,
        split_score,
    )
    from archsearch.search.settings import score_options, split_names
    from archsearch.spec import Architecture

    names = split_names(score) or [DEFAULT_SCORE]
    given = {
        "data": data,
        "epochs": epochs,
        "steps": steps,
        "proxy_input": proxy_input,
        "proxy_batch": proxy_batch,
        "table": table,
    }
    options = score_options(names, given, extra=score_option)
    evs = create_evaluators(names, options)
    store = Store(db)
    archs: list[Architecture] = []
    for ref in refs:
        if ref.startswith("zoo:") or ref.endswith((".yaml", ".yml", ".json")):
            archs += [a for _, a in resolve_init([ref])]
        else:
            archs.append(Architecture.from_json(store.architecture(ref).spec))
    first = score_metric(*split_score(names[0]), evs)
    run_id = store.create_run(
        RunConfig(
            space="-",
            space_yaml="",
            strategy="evaluate",
            strategy_config={"refs": list(refs)},
            objectives=[f"{first.name}:{first.direction}"],
            evaluators={e.name: e.config() for e in evs},
        )
    )
    rows = []
    columns = ["digest", "macs", "params"]
    try:
        with _step_bars(evs):
            for arch in archs:
                rows.append(_score_one(store, run_id, arch, evs))
    except KeyboardInterrupt as stop:
        store.set_run_status(run_id, "interrupted")  # the finished rows are stored
        raise typer.Exit(interrupt_code(stop)) from None
    except BaseException as e:
        store.set_run_status(run_id, "failed", error=f"{type(e).__name__}: {e}")
        raise
    for row in rows:
        columns += [k for k in row if k not in (*columns, "seconds", "error")]
    store.set_run_status(run_id, "finished")
    emit(
        rows,
        [*columns, "seconds", *(["error"] if any(r["error"] for r in rows) else [])],
        fmt,
        title=f"scores of {len(rows)} architecture(s), stored as run {run_id}",
        caption=flop_caption(),
    )


@contextmanager
def _step_bars(evs: list[Evaluator]) -> Iterator[None]:
    """A progress bar per candidate for the expensive scores (training steps), on stderr."""
    bar = progress_bar("{task.description}")
    tasks: dict[str, Any] = {}

    def on_step(label: str, done: int, total: int) -> None:
        if not bar.live.is_started:
            bar.start()
        if label not in tasks:
            tasks[label] = bar.add_task(f"train {label}", total=total)
        bar.update(tasks[label], completed=done, total=total)

    for ev in evs:
        if not ev.cheap:
            ev.on_step = on_step
    try:
        yield
    finally:
        stop_bar(bar)


def _score_one(store: Any, run_id: int, arch: Any, evs: list[Evaluator]) -> dict[str, Any]:
    """Every score of one network, stored as one trial; a failure is kept in its row."""
    from archsearch.cost import count
    from archsearch.db import TrialRecord, worker_id
    from archsearch.db.models import utcnow
    from archsearch.search import run_evaluators

    cost = count(arch)
    started = utcnow()
    t = time.monotonic()
    (values,), (error,) = run_evaluators(evs, [arch])
    seconds = time.monotonic() - t
    record = TrialRecord(
        arch,
        cost,
        values,
        state="failed" if error else "complete",
        error=error,
        started_at=started,
        finished_at=utcnow(),
        worker=worker_id(),
    )
    store.add_trials(run_id, [record])
    return {
        "digest": arch.digest[:12],
        **cost.as_dict(),
        **values,
        "seconds": seconds,
        "error": error or "",
    }
