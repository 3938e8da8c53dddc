"""Latency look-up table on the CPU: profiling time and how well it predicts whole networks.

In one run, on a fresh database (or --db): profile every block option of the ``hybrid`` space
at 224x224, at both input layouts, on torch CPU (batch 1, --threads threads), calibrate the
correction on --calibrate sampled networks, then sample --n other networks, measure each whole
and predict it from the table. Prints the share of predictions within +-10%, MAPE, Spearman
and Kendall correlations, the profiling time and the prediction throughput. Ablations from the
same stored timings: one global scale instead of per-block-type scales; the same with NCHW
entries for every block (input layouts ignored); with raw milliseconds instead of reference
units. And the noise ceiling: the same networks measured a second time, against the first
measurement (no predictor can agree with a measurement better than it agrees with itself).

Usage: python benchmarks/latency_lut.py [--n 50] [--calibrate 20] [--threads 2] [--db URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import archsearch
from archsearch import profiling
from archsearch.cli.latency import sample_distinct
from archsearch.cost.devices import create_device
from archsearch.cost.latency import Agreement, agreement, block_signature
from archsearch.db import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50, help="networks checked")
    ap.add_argument("--calibrate", type=int, default=20, help="networks for the correction")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    store = Store(args.db or f"sqlite:///{Path(tmp.name) / 'lut.db'}")
    device = create_device("cpu", threads=args.threads, batch=1)
    space = archsearch.load_space("hybrid")
    print(f"device: {device.identity()} [{device.key}]")

    items = profiling.space_items(device, space)
    report = profiling.profile(store, device, items)
    print(
        f"profile: {report.measured} entries measured ({report.skipped} already in the table) "
        f"for {len(space.block_options())} block options of 'hybrid' x {len(device.layouts)} "
        f"input layouts in {report.seconds:.1f}s"
    )

    cal = sample_distinct(space, args.calibrate, seed=0)
    test = [
        a
        for a in sample_distinct(space, args.n + args.calibrate, seed=1)
        if a.digest not in {c.digest for c in cal}
    ][: args.n]
    t = time.perf_counter()
    corr = profiling.calibrate(store, device, cal)
    scales = ", ".join(f"{k} {v:.2f}" for k, v in sorted(corr.type_scales.items()))
    print(
        f"calibrate: {corr.n} networks in {time.perf_counter() - t:.1f}s; global scale "
        f"{corr.scale:.4f}, per type ({scales}), ridge {corr.ridge:g}; fit MAPE "
        f"{corr.mape:.1f}%, leave-one-out MAPE {corr.loo_mape:.1f}%"
    )
    t = time.perf_counter()
    check = profiling.check(store, device, test)
    print(
        f"check: {len(test)} networks measured and predicted in {time.perf_counter() - t:.1f}s "
        f"(median {statistics.median(r.measured_ms for r in check.rows):.1f} ms, "
        f"range {min(r.measured_ms for r in check.rows):.1f}-"
        f"{max(r.measured_ms for r in check.rows):.1f} ms)"
    )

    # The noise ceiling: the same networks measured again, against the first measurement.
    t = time.perf_counter()
    again = profiling.measure_networks(device, test)
    measured = [r.measured_ms for r in check.rows]
    repeat_agree = agreement([r.median_ms for r in again], measured)
    print(f"re-measured the {len(test)} networks in {time.perf_counter() - t:.1f}s")

    # Ablations from the timings just stored, each with one global scale fitted on the same
    # calibration networks: reference units; NCHW entries for every block (input layouts
    # ignored); raw milliseconds.
    model = profiling.load_model(store, device)
    entries = store.latency_entries(device.key)
    rel = {e["signature"]: e["rel_median"] for e in entries}
    raw = {e["signature"]: e["median_ms"] for e in entries}
    nets = {n["digest"]: n for n in store.network_latencies(device.key)}

    def ablation(table: dict[str, float], layouts: bool, key: str, ref_ms: float) -> Agreement:
        def total(a: archsearch.Architecture) -> float:
            return sum(
                table[block_signature(b, s, layout if layouts else "nchw")]
                for b, s, layout in model.items(a)
            )

        scale = statistics.median(nets[a.digest][key] / total(a) for a in cal)
        return agreement([scale * total(a) * ref_ms for a in test], measured)

    global_agree = ablation(rel, True, "rel_median", check.session_ref_ms)
    nchw_agree = ablation(rel, False, "rel_median", check.session_ref_ms)
    raw_agree = ablation(raw, True, "median_ms", 1.0)

    archs = [space.sample(seed=100_000 + i) for i in range(10_000)]
    t = time.perf_counter()
    for a in archs:
        model.predict(a)
    rate = len(archs) / (time.perf_counter() - t)

    print(f"\n{'predictor':62s} {'within10':>9s} {'MAPE':>6s} {'Spearman':>9s} {'Kendall':>8s}")
    rows = [
        ("reference units, reference speed of this session", check.session),
        (
            f"reference units, nominal speed ({check.nominal_ref_ms:.3f} ms vs "
            f"{check.session_ref_ms:.3f} ms now)",
            check.nominal,
        ),
        ("ablation: one global scale (session speed)", global_agree),
        ("ablation: one global scale, NCHW entries only (layouts ignored)", nchw_agree),
        ("ablation: one global scale, raw milliseconds", raw_agree),
        ("noise ceiling: a second measurement of the same networks", repeat_agree),
    ]
    for name, a in rows:
        print(
            f"{name:62s} {a.within_10pct:9.0%} {a.mape:5.1f}% {a.spearman:9.3f} {a.kendall:8.3f}"
        )
    print(f"\npredictions: {rate:,.0f} per second ({len(archs)} sampled architectures)")
    s = check.session
    print(
        f"targets: >= 95% within +-10% {'OK' if s.within_10pct >= 0.95 else 'MISSED'} "
        f"({s.within_10pct:.0%}); Spearman >= 0.97 {'OK' if s.spearman >= 0.97 else 'MISSED'} "
        f"({s.spearman:.3f}); >= 10,000 predictions/s {'OK' if rate >= 10_000 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
