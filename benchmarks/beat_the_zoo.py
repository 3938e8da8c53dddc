"""Do archsearch's searches beat the hand-designed networks at equal latency? Measured here.

On ``hybrid-small`` and Fashion-MNIST (the IDX files of ``--data``), at each latency target on
this machine's CPU (``latency@cpu``, predicted from the look-up table of the benchmark's
database):

0. the table: every block option of the space profiled, then the correction fitted on 30
   sampled members, the largest member and the seed ladders (``latency profile`` does the
   same with sampled members only), all before the first prediction;
1. baselines: five seed designs written in ``hybrid-small``'s vocabulary (ConvNeXt-,
   EfficientFormer-, TinyViT-, PoolFormer- and ResNet-like members, see ``SEEDS``), each scaled
   uniformly: at scale ``(w, d)`` every stage takes its ``w``-th widest width and loses ``d``
   blocks (down to its minimum depth); of all scales whose predicted latency meets the
   target, the slowest (the one on which the target binds) is the baseline;
2. searches with the same number of evaluations (``--evaluations``, the walks may end sooner):
   ``slimming`` and ``contraction`` on the supernet score (``-O lazy=4``), ``evolution`` on
   the supernet score,
   ``evolution`` on NASWOT, ``random`` on NASWOT; each search's winner is its best-scoring
   network within the target;
3. every winner and baseline trained from scratch with one recipe (``--epochs`` over a seeded
   ``--train-size`` subset), ``--seeds`` seeds each (a network found twice is trained once),
   tested on the t10k split; the noise of a network (the mean std over seeds, and the mean
   difference between two of its seeds) is printed beside the difference between two
   networks trained with the same seed.

Prints one table per target (network, MACs, params, predicted and measured latency, accuracy
mean +- std, search wall time and evaluations) and writes every row to ``--out`` (JSON).
``--quick`` runs a smoke test of every step in a few minutes (tiny training; its accuracies
mean nothing).

Usage:
    python benchmarks/beat_the_zoo.py --data ../shared/data/fashion-mnist [--targets 2.0,3.0]
        [--evaluations 150] [--seeds 3] [--epochs 3] [--train-size 10000]
        [--supernet-epochs 3] [--workdir DIR] [--out beat_the_zoo.json] [--quick]

FLOP convention: 1 FLOP = 1 multiply-accumulate; MACs are at the space's 3x32x32.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import archsearch
from archsearch.cost import count
from archsearch.cost.latency import Correction
from archsearch.db import Store
from archsearch.evaluators import EVALUATORS
from archsearch.solvers.shrinking import Moves
from archsearch.spaces import Space
from archsearch.spec import Architecture

SPACE = "hybrid-small"
ROOT = Path(__file__).resolve().parents[1]


def _stage_types(types: list[str]) -> Callable[[dict[str, Any], Space], None]:
    """Sets every block of stage ``i`` to ``types[i]`` (and its largest parameters)."""

    def apply(a: dict[str, Any], space: Space) -> None:
        for so, t in zip(space.stages, types, strict=True):
            for j in range(max(so.depths)):
                a[f"{so.prefix(j)}.type"] = t

    return apply


SEEDS: dict[str, dict[str, Any]] = {
    # name: stem type, downsample type per stage 2-4, block type per stage, fixed params
    "convnext-like": {
        "stem": "patchify",
        "down": "patch_merge",
        "types": ["convnext", "convnext", "convnext", "convnext"],
        "params": {"convnext.mlp_ratio": 4},
    },
    "efficientformer-like": {
        "stem": "conv_bn_act",
        "down": "conv_down",
        "types": ["pool", "pool", "pool", "effformer_attn"],
        "params": {"pool.norm": "bn", "pool.mlp_ratio": 4},
    },
    "tinyvit-like": {
        "stem": "conv_bn_act",
        "down": "patch_merge",
        "types": ["mbconv", "tinyvit", "tinyvit", "mhsa"],
        "params": {"mbconv.expand": 4, "mbconv.se_ratio": 0, "mhsa.mlp_ratio": 4},
    },
    "poolformer-like": {
        "stem": "overlap_patch",
        "down": "conv_down",
        "types": ["pool", "pool", "pool", "convnext"],
        "params": {"pool.norm": "gn", "pool.mlp_ratio": 4, "convnext.mlp_ratio": 4},
    },
    "resnet-like": {
        "stem": "conv_bn_act",
        "down": "conv_down",
        "types": ["mbconv", "bottleneck", "mbconv", "mbconv"],
        "params": {"mbconv.expand": 4, "mbconv.se_ratio": 0, "bottleneck.btn_ratio": 0.25},
    },
}
"""The seed designs in hybrid-small's vocabulary. Where a stage does not offer a design's
block (ResNet's bottleneck exists only in s2; TinyViT's windows not in s4; PoolFormer's last
stage keeps pooling only where offered), the closest block the stage offers stands in."""


def seed_member(space: Space, name: str, width: int, cut: int) -> Architecture | None:
    """Seed design ``name`` with every stage at its ``width``-th widest width (0 = widest) and
    ``cut`` blocks shorter than its deepest (down to its minimum depth), or None when the
    scale leaves the space."""
    design = SEEDS[name]
    moves = Moves(space)
    a = moves.assignment(space.largest())
    a["stem.type"] = design["stem"]
    for so in space.stages[1:]:
        a[f"{so.name}.down.type"] = design["down"]
    _stage_types(design["types"])(a, space)
    for label in list(a):
        for key, value in design["params"].items():
            if label.endswith("." + key) and value in space.labels()[label]:
                a[label] = value
    for so in space.stages:
        widths = sorted(so.widths)
        depths = sorted(so.depths)
        if width >= len(widths):
            return None
        a[f"{so.name}.width"] = widths[-1 - width]
        a[f"{so.name}.depth"] = max(depths[0], depths[-1] - cut)
    try:
        return space.decode(a)
    except Exception:
        return None


def cli(*args: str, json_out: bool = True) -> dict[str, Any]:
    """Runs ``archsearch ARGS [-f json]`` and returns its document."""
    exe = Path(sys.executable).parent / "archsearch"
    fmt = ["-f", "json"] if json_out else []
    out = subprocess.run([str(exe), *args, *fmt], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"archsearch {' '.join(args)} failed: {out.stderr.strip()}")
    return dict(json.loads(out.stdout)) if json_out else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/fashion-mnist"))
    ap.add_argument("--targets", default=None, help="latency targets in ms, comma-separated")
    ap.add_argument(
        "--fractions",
        default=None,
        help="without --targets: where the targets lie in the range that every seed design "
        "can be scaled to, 0..1, comma-separated (default 0.4,0.8; --quick 0.6); the same "
        "fractions give comparable targets on machines of different speed",
    )
    ap.add_argument("--evaluations", type=int, default=150)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--train-size", type=int, default=10000)
    ap.add_argument("--supernet-epochs", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default="beat_the_zoo.json")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress in logs
    if args.quick:
        args.evaluations, args.seeds, args.epochs = 60, 2, 0.05
        args.train_size, args.supernet_epochs = 1000, 1
    try:
        fractions = [
            float(f) for f in (args.fractions or ("0.6" if args.quick else "0.4,0.8")).split(",")
        ]
    except ValueError:
        fractions = [-1.0]
    if not all(0.0 <= f <= 1.0 for f in fractions):
        raise SystemExit(
            f"--fractions={args.fractions}: each must be a number in 0..1, e.g. 0.4,0.8"
        )
    data = f"idx:{Path(args.data).resolve()}"
    work = Path(args.workdir or tempfile.mkdtemp(prefix="beat_the_zoo_"))
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{work / 'bench.db'}"
    store = Store(url)
    space = archsearch.load_space(SPACE)
    latency = EVALUATORS.create("latency@cpu")
    latency.bind(store)

    def predicted(arch: Architecture) -> float:
        return float(latency.evaluate([arch])[0]["latency@cpu"])

    # every uniform scale of each seed design; the diagonal (w, w // 2) is its ladder from
    # the widest to the narrowest, used for calibration and to choose the targets
    grids = {
        name: {
            (w, d): a
            for w in range(8)
            for d in range(max(max(so.depths) for so in space.stages))
            if (a := seed_member(space, name, w, d)) is not None
        }
        for name in SEEDS
    }
    ladders = [a for grid in grids.values() for (w, d), a in grid.items() if d == w // 2]
    t0 = time.monotonic()
    correction = _profile_and_calibrate(
        store, space, ladders,
        random_networks=8 if args.quick else 30,
    )  # fmt: skip
    latency.bind(store)  # the calibrated model
    print(
        f"latency table of {SPACE} profiled and calibrated in {time.monotonic() - t0:.0f} s "
        f"(global scale {correction.scale:.3f}, leave-one-out MAPE {correction.loo_mape:.1f}% "
        f"on {correction.n} networks)"
    )
    if args.targets:
        targets = [float(t) for t in args.targets.split(",")]
    else:  # where every seed design has a scale within the target and none is unscaled
        scales = {name: [predicted(a) for a in grid.values()] for name, grid in grids.items()}
        lo = max(min(v) for v in scales.values())
        hi = min(max(v) for v in scales.values())
        if lo >= hi:
            raise SystemExit(f"the seed designs' latencies do not overlap ({lo:.2f} > {hi:.2f})")
        targets = [round(lo + (hi - lo) * f, 2) for f in fractions]
    print(f"targets (latency@cpu, ms): {targets}")

    t0 = time.monotonic()
    cli(
        "supernet", "train", "--space", SPACE, "--data", data,
        "--epochs", str(args.supernet_epochs), "--train-size", str(args.train_size),
        "--out", str(work / "supernet.safetensors"), "--db", url, json_out=False,
    )  # fmt: skip
    supernet_id = max(int(x["id"]) for x in store.list_supernets())
    supernet_seconds = time.monotonic() - t0
    print(f"supernet {supernet_id} trained in {supernet_seconds:.0f} s")

    searches = [
        ("slimming (supernet)", "slimming", "supernet"),
        ("contraction (supernet)", "contraction", "supernet"),
        ("evolution (supernet)", "evolution", "supernet"),
        ("evolution (naswot)", "evolution", "naswot"),
        ("random (naswot)", "random", "naswot"),
    ]
    recipe = {"epochs": args.epochs, "train_size": args.train_size, "holdout": "test"}
    train = {s: EVALUATORS.create("train", data=data, seed=s, **recipe) for s in range(args.seeds)}
    trained: dict[str, list[float]] = {}  # digest -> accuracy per seed (networks recur)

    def accuracies(arch: Architecture) -> list[float]:
        if arch.digest not in trained:
            t0 = time.monotonic()
            trained[arch.digest] = [
                float(train[s].evaluate([arch])[0]["accuracy"]) for s in range(args.seeds)
            ]
            accs = ", ".join(f"{a:.2f}" for a in trained[arch.digest])
            print(f"  trained {arch.digest[:12]}: {accs} % ({time.monotonic() - t0:.0f} s)")
        return trained[arch.digest]

    rows: list[dict[str, Any]] = []
    for target in targets:
        nets: list[tuple[str, Architecture, float, int]] = []
        for name, grid in grids.items():
            fit = [(p, a) for a in grid.values() if (p := predicted(a)) <= target]
            if fit:  # the slowest uniform scale within the target
                nets.append((name, max(fit, key=lambda x: x[0])[1], 0.0, 0))
        for label, strategy, score in searches:
            metric = "supernet_accuracy" if score == "supernet" else "naswot"
            extra = ["--supernet", str(supernet_id), "--data", data] if score == "supernet" else []
            if strategy in ("slimming", "contraction"):
                extra += ["-O", "lazy=4"]  # about 4 evaluations per step instead of ~25
            t0 = time.monotonic()
            out = cli(
                "run", "--space", SPACE, "--strategy", strategy, "--score", score, *extra,
                "--objectives", f"{metric}:max", "--latency", f"{target}ms",
                "--device", "cpu", "--trials", str(args.evaluations), "--db", url,
            )  # fmt: skip
            seconds = time.monotonic() - t0
            if not out["front"]:
                print(f"  {label}: no network within {target} ms in {out['trials']} evaluations")
                continue
            best = max(out["front"], key=lambda r: r[metric])
            arch = Architecture.from_json(store.architecture(best["digest"]).spec)
            nets.append((label, arch, seconds, int(out["trials"])))
        from archsearch import profiling
        from archsearch.cost.devices import create_device

        report = profiling.check(store, create_device("cpu"), [n[1] for n in nets])
        measured = {r.digest: r.measured_ms for r in report.rows}
        for label, arch, seconds, evaluations in nets:
            accs = accuracies(arch)
            cost = count(arch)
            rows.append(
                {
                    "target_ms": target,
                    "network": label,
                    "digest": arch.digest,
                    "macs": cost.macs,
                    "params": cost.params,
                    "predicted_ms": predicted(arch),
                    "measured_ms": measured[arch.digest],
                    "accuracy": accs,
                    "mean": statistics.mean(accs),
                    "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                    "search_s": seconds,
                    "evaluations": evaluations,
                }
            )
        _print(target, [r for r in rows if r["target_ms"] == target])
        Path(args.out).write_text(  # after every target: a long run keeps what it measured
            json.dumps(
                {
                    "machine": platform.processor() or platform.machine(),
                    "space": SPACE,
                    "data": data,
                    "args": vars(args),
                    "targets": targets,
                    "calibration": {"scale": correction.scale, "loo_mape": correction.loo_mape},
                    "supernet_seconds": supernet_seconds,
                    "rows": rows,
                },
                indent=1,
            )
        )
        print(f"rows written to {args.out}; work files in {work}")


def _profile_and_calibrate(
    store: Store, space: Space, seeds: list[Architecture], *, random_networks: int
) -> Correction:
    """Fills the CPU's table with every block option of ``space`` and fits its correction on
    whole networks: ``random_networks`` sampled members, the largest member (where the walks
    start) and the seed ladders. Done before anything is predicted, the predictor does not
    move during the run (lazily filled, uncalibrated entries made the walks' deep end points
    measure 20-35% slower than predicted in a first run)."""
    from archsearch import profiling
    from archsearch.cli.latency import sample_distinct
    from archsearch.cost.devices import create_device

    device = create_device("cpu")
    profiling.profile(store, device, profiling.space_items(device, space))
    archs = [*sample_distinct(space, random_networks, 0), space.largest(), *seeds]
    unique = list({a.digest: a for a in archs}.values())
    return profiling.calibrate(store, device, unique)


def _disagreement(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """Mean absolute accuracy difference between two seeds of one network, and between two
    different networks trained with the same seed."""
    within = [
        abs(a - b)
        for r in rows
        for i, a in enumerate(r["accuracy"])
        for b in r["accuracy"][i + 1 :]
    ]
    between = [
        abs(r["accuracy"][k] - q["accuracy"][k])
        for i, r in enumerate(rows)
        for q in rows[i + 1 :]
        for k in range(min(len(r["accuracy"]), len(q["accuracy"])))
        if r["digest"] != q["digest"]
    ]
    return (statistics.mean(within) if within else 0.0), (
        statistics.mean(between) if between else 0.0
    )


def _print(target: float, rows: list[dict[str, Any]]) -> None:
    print(f"\nlatency target {target} ms (latency@cpu; 1 FLOP = 1 MAC; accuracy on t10k)")
    print(
        f"{'network':24} {'MFLOPs':>7} {'params M':>8} {'pred ms':>7} {'meas ms':>7} "
        f"{'acc % mean +- std':>18} {'search s':>8} {'evals':>5}"
    )
    for r in rows:
        print(
            f"{r['network']:24} {r['macs'] / 1e6:7.2f} {r['params'] / 1e6:8.3f} "
            f"{r['predicted_ms']:7.3f} {r['measured_ms']:7.3f} "
            f"{r['mean']:10.2f} +- {r['std']:5.2f} {r['search_s']:8.0f} {r['evaluations']:5d}"
        )
    noise = statistics.mean(r["std"] for r in rows)
    spread = statistics.pstdev(r["mean"] for r in rows)
    within, between = _disagreement(rows)
    print(
        f"noise (mean std over seeds) {noise:.2f} points; spread of the means {spread:.2f}; "
        f"two seeds of one network differ by {within:.2f} points on average, two different "
        f"networks (same seed) by {between:.2f} ({between / max(within, 1e-9):.1f}x)"
    )
    seeds = [r for r in rows if r["evaluations"] == 0]
    for r in (r for r in rows if r["evaluations"]):
        # the seeds at equal or higher measured latency: what the search must beat
        slower = [x for x in seeds if x["measured_ms"] >= r["measured_ms"]]
        if not slower:
            print(f"  {r['network']}: slower ({r['measured_ms']:.3f} ms) than every seed")
            continue
        best = max(slower, key=lambda x: x["mean"])
        gain = r["mean"] - best["mean"]
        verdict = "beats" if gain > noise else "does not beat"
        print(
            f"  {r['network']} {verdict} the best seed at equal or higher latency "
            f"({best['network']}, {best['measured_ms']:.3f} ms) by {gain:+.2f} points "
            f"(noise {noise:.2f})"
        )


if __name__ == "__main__":
    main()
