"""``archsearch devices`` and ``archsearch latency``: look-up tables, checks, measurements."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
)
from archsearch.limits import MAX_INT
from archsearch.spec import Architecture

if TYPE_CHECKING:
    from rich.progress import Progress

    from archsearch.cost.devices import Device
    from archsearch.spaces import Space

app = typer.Typer(
    help="Latency look-up tables per device: profile a space, check predictions, measure.",
    no_args_is_help=True,
)

DeviceArg = Annotated[str, typer.Option("--device", help="A device (see `archsearch devices`).")]
DeviceOptions = Annotated[
    list[str] | None,
    typer.Option("--device-option", "-D", help="Device option name=value, e.g. threads=2."),
]


def make_device(name: str, options: list[str] | None) -> Device:
    from archsearch.cost.devices import create_device
    from archsearch.search.settings import parse_options

    return create_device(name, **parse_options(options or [], what="device_option"))


def _bar(label: str) -> Progress:
    return progress_bar(f"[bold]{label}", transient=True)


def sample_distinct(space: Space, n: int, seed: int) -> list[Architecture]:
    """``n`` distinct members drawn with ``random.Random(seed)``."""
    rng = random.Random(seed)
    out: dict[str, Architecture] = {}
    for _ in range(100 * n):
        if len(out) == n:
            break
        a = space.sample(rng)
        out.setdefault(a.digest, a)
    return list(out.values())


@handle_errors
def devices(fmt: FormatOption = Format.table) -> None:
    """The devices archsearch can time networks on, and whether this machine has each."""
    from archsearch.cost.devices import DEVICES

    rows: list[dict[str, Any]] = []
    for name in DEVICES.names():
        cls = DEVICES.get(name)
        reason = cls.unavailable()
        row: dict[str, Any] = {"device": name, "available": reason is None, "reason": reason or ""}
        if reason is None:
            d = cls()
            row.update(key=d.key, identity=", ".join(f"{k}={v}" for k, v in d.identity().items()))
        rows.append(row)
    emit(rows, ["device", "available", "reason", "key", "identity"], fmt, title="devices")


@app.command()
@handle_errors
def profile(
    space: Annotated[str, typer.Option(help="A built-in space or a YAML file.")],
    device: DeviceArg = "cpu",
    device_option: DeviceOptions = None,
    warmup: Annotated[
        int, typer.Option(min=0, max=10_000, help="Untimed runs of each block first.")
    ] = 5,
    repeats: Annotated[
        int, typer.Option(min=1, max=10_000, help="Timed runs of each block.")
    ] = 20,
    calibrate: Annotated[
        int,
        typer.Option(
            min=0, max=10_000, help="Whole networks measured to fit the correction (0: none)."
        ),
    ] = 20,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_INT, help="Seed of the calibration networks.")
    ] = 0,
    db: DbOption = None,
) -> None:
    """Fill the device's look-up table with every block the space can contain, then calibrate.

    Idempotent: blocks already in the table are skipped. Several processes may profile into
    one database at once.
    """
    from archsearch import profiling
    from archsearch.db import Store
    from archsearch.spaces import load_space

    s, store, dev = load_space(space), Store(db), make_device(device, device_option)
    items = profiling.space_items(dev, s)
    with _bar(f"profiling {len(items)} table entries on {dev.name}") as bar:
        task = bar.add_task("blocks", total=None)
        report = profiling.profile(
            store,
            dev,
            items,
            warmup=warmup,
            repeats=repeats,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(
        f"{dev.name} [{dev.key}]: {report.measured} entries measured, {report.skipped} already "
        f"in the table, {report.requested} for space {s.name!r} (each block option at each input "
        f"layout); {report.seconds:.1f}s"
    )
    if calibrate:
        archs = sample_distinct(s, calibrate, seed)
        with _bar(f"calibrating on {len(archs)} networks") as bar:
            task = bar.add_task("nets", total=len(archs))
            corr = profiling.calibrate(
                store,
                dev,
                archs,
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        model = profiling.load_model(store, dev)
        scales = ", ".join(f"{t} {k:.3f}" for t, k in sorted(corr.type_scales.items()))
        console.print(
            f"correction on {corr.n} networks: global scale {corr.scale:.4f}, per block type "
            f"({scales}), ridge {corr.ridge:g}; fit MAPE {corr.mape:.1f}%, leave-one-out MAPE "
            f"{corr.loo_mape:.1f}%; reference workload {model.ref_ms:.3f} ms",
            soft_wrap=True,
        )


@app.command()
@handle_errors
def check(
    space: Annotated[str, typer.Option(help="A built-in space or a YAML file.")],
    device: DeviceArg = "cpu",
    device_option: DeviceOptions = None,
    n: Annotated[
        int, typer.Option(min=1, max=10_000, help="Networks sampled, measured and predicted.")
    ] = 50,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_INT, help="Seed of the sampled networks.")
    ] = 1,
    plot: Annotated[
        Path | None, typer.Option(help="Write a predicted-vs-measured scatter plot (PNG).")
    ] = None,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Measure N sampled networks whole, predict them from the table, store and compare both.

    Predictions use the reference workload's speed measured in the same session; the
    summary also gives the agreement at the nominal (calibration-time) speed.
    """
    from archsearch import profiling
    from archsearch.db import Store
    from archsearch.spaces import load_space

    if n < 2:
        raise typer.BadParameter(f"--n {n}: check at least 2 networks")
    s, store, dev = load_space(space), Store(db), make_device(device, device_option)
    archs = sample_distinct(s, n, seed)
    with _bar(f"measuring {len(archs)} networks on {dev.name}") as bar:
        task = bar.add_task("nets", total=len(archs))
        report = profiling.check(
            store,
            dev,
            archs,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    rows = [
        {
            "digest": r.digest[:12] if fmt is Format.table else r.digest,
            "macs": r.macs,
            "predicted_ms": r.predicted_ms,
            "measured_ms": r.measured_ms,
            "p10_ms": r.p10_ms,
            "p90_ms": r.p90_ms,
            "error_pct": r.error_pct,
        }
        for r in report.rows
    ]
    a, b = report.session, report.nominal
    summary = {
        "device": dev.name,
        "key": dev.key,
        "n": a.n,
        "within_10pct": a.within_10pct,
        "mape": a.mape,
        "spearman": a.spearman,
        "kendall": a.kendall,
        "nominal_within_10pct": b.within_10pct,
        "nominal_mape": b.mape,
        "session_ref_ms": report.session_ref_ms,
        "nominal_ref_ms": report.nominal_ref_ms,
    }
    if fmt is Format.json:
        import json

        typer.echo(json.dumps({"summary": summary, "rows": rows}, indent=2))
    else:
        emit(rows, list(rows[0]), fmt, title=f"latency check on {dev.name} [{dev.key}]")
        if fmt is Format.table:
            console.print(
                f"{a.n} networks: {a.within_10pct:.0%} within +-10%, MAPE {a.mape:.1f}%, "
                f"Spearman {a.spearman:.3f}, Kendall {a.kendall:.3f} (at this session's speed, "
                f"reference {report.session_ref_ms:.3f} ms); at the nominal speed "
                f"({report.nominal_ref_ms:.3f} ms): {b.within_10pct:.0%} within +-10%, MAPE "
                f"{b.mape:.1f}%"
            )
    if plot is not None:
        scatter(
            plot,
            [r.predicted_ms for r in report.rows],
            [r.measured_ms for r in report.rows],
            f"{dev.name}: {a.within_10pct:.0%} within +-10%, Spearman {a.spearman:.3f}",
        )
        err_console.print(f"plot: {plot}")


def scatter(path: Path, predicted: list[float], measured: list[float], title: str) -> None:
    """A predicted-vs-measured scatter plot with the y = x and +-10% lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hi = max(max(predicted), max(measured)) * 1.05
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    ax.plot([0, hi], [0, hi], "k-", lw=1, label="y = x")
    ax.plot([0, hi], [0, hi * 1.1], "k:", lw=1, label="+-10%")
    ax.plot([0, hi], [0, hi * 0.9], "k:", lw=1)
    ax.scatter(measured, predicted, s=14)
    ax.set(
        xlim=(0, hi), ylim=(0, hi), xlabel="measured (ms)", ylabel="predicted (ms)", title=title
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@app.command()
@handle_errors
def measure(
    digest: Annotated[str, typer.Argument(help="A stored architecture's digest (>= 6 chars).")],
    device: DeviceArg = "cpu",
    device_option: DeviceOptions = None,
    repeats: Annotated[int, typer.Option(min=1, max=10_000, help="Timed runs.")] = 20,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Time one whole stored network on a device and store the measurement."""
    from archsearch import profiling
    from archsearch.cost.counting import count
    from archsearch.cost.latency import MissingEntries
    from archsearch.db import Store, TrialRecord

    store, dev = Store(db), make_device(device, device_option)
    arch = Architecture.from_json(store.architecture(digest).spec)
    (timing,) = profiling.measure_networks(dev, [arch], repeats=repeats)
    model = profiling.load_model(store, dev)
    try:
        block_sum: float | None = model.block_sum(arch)
        predicted: float | None = model.predict(arch, ref_ms=timing.ref_ms)
    except MissingEntries:
        block_sum = predicted = None
    store.add_network_latency(
        profiling.device_info(dev),
        TrialRecord(arch, count(arch), {}),
        timing.as_dict(),
        purpose="measure",
        block_sum=block_sum,
        predicted_ms=predicted,
    )
    row = {"digest": arch.digest, **timing.as_dict(), "predicted_ms": predicted}
    emit([row], list(row), fmt, title=f"{arch.summary()} on {dev.name} [{dev.key}]")
    if predicted is None and fmt is Format.table:
        console.print(
            "no prediction: blocks are missing from the table (archsearch latency profile)"
        )
