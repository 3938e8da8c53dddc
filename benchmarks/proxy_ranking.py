"""How well each training-free score ranks architectures by trained accuracy, measured here.

Samples architectures from the built-in ``hybrid-small`` space (seeded, uniform over the
space's sampler), trains each on Fashion-MNIST with the ``train`` evaluator's default recipe
at a fixed budget (by default 2 epochs over a seeded 15,000-image subset of the training
split, top-1 on 5,000 held-out training images; 1x28x28, 10 classes), computes every
zero-cost proxy on one real batch of the same data (the network built at 1x28x28 like the
trained one) plus ``entropy``, ``params`` and ``macs``, and prints for each score its
Spearman and Kendall rank correlation with trained accuracy and its time per architecture,
beside the time per training. Rows go to ``--out`` (JSON) so the table can be recomputed.

Usage:
    python benchmarks/proxy_ranking.py --data ../shared/data/fashion-mnist [--n 36]
        [--epochs 2] [--train-size 15000] [--eval-size 5000] [--proxy-batch 32]
        [--time-budget 3300] [--out proxy_ranking.json]

The data path takes the ``idx:``/``npz:``/``folder:`` forms of ``--data`` too; Debian's
``dataset-fashion-mnist`` installs the same IDX files. ``--time-budget`` stops sampling new
architectures when the next one would probably not finish within it (at least 30 are trained
regardless, unless ``--n`` is smaller), so the run stays under an hour on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

import archsearch
from archsearch.evaluators import EVALUATORS
from archsearch.evaluators.entropy import deepmad_entropy

PROXIES = ("naswot", "synflow", "grad_norm", "snip", "jacob_cov", "zen")
ANALYTIC = ("entropy", "params", "macs")
MIN_ARCHS = 30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/fashion-mnist")
    )
    ap.add_argument("--n", type=int, default=36, help="architectures to sample")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--train-size", type=int, default=15000)
    ap.add_argument("--eval-size", type=int, default=5000)
    ap.add_argument("--proxy-batch", type=int, default=32)
    ap.add_argument("--time-budget", type=float, default=3300.0, help="seconds")
    ap.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    ap.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="reuse the architectures and trained accuracies of an earlier --out file and only "
        "recompute the proxies (with this run's --proxy-batch, --proxy-input, --seed)",
    )
    ap.add_argument(
        "--proxy-input",
        default=None,
        help="run the proxies on N(0,1) noise at this CxHxW (e.g. 3x32x32) instead of a batch "
        "of the data",
    )
    args = ap.parse_args()

    data = args.data if ":" in args.data.split("/")[0] else f"idx:{args.data}"
    space = archsearch.load_space("hybrid-small")
    trainer = EVALUATORS.create(
        "train",
        data=data,
        epochs=args.epochs,
        train_size=args.train_size,
        eval_size=args.eval_size,
        seed=args.seed,
    )
    ds = trainer.dataset  # type: ignore[attr-defined]
    source = {"input": args.proxy_input} if args.proxy_input else {"data": data}
    proxies = {
        n: EVALUATORS.create(n, **source, batch=args.proxy_batch, seed=args.seed) for n in PROXIES
    }
    if args.from_json:
        rescore(json.loads(args.from_json.read_text()), proxies, space)
        return
    print(
        f"proxy ranking: hybrid-small on {data} ({ds.shape[0]}x{ds.shape[1]}x{ds.shape[2]}, "
        f"{ds.num_classes} classes); train {args.epochs:g} epochs on {args.train_size} images, "
        f"top-1 on {args.eval_size} held-out; {platform.node()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    rng = np.random.default_rng(args.seed)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    start = time.monotonic()
    while len(rows) < args.n:
        elapsed = time.monotonic() - start
        if len(rows) >= MIN_ARCHS and rows:
            per = elapsed / len(rows)
            if elapsed + per > args.time_budget:
                print(f"stopping at {len(rows)} architectures: the time budget is spent")
                break
        arch = space.sample(seed=int(rng.integers(2**31)))
        if arch.digest in seen:
            continue
        seen.add(arch.digest)
        at_data = arch.with_input(ds.shape, ds.num_classes)
        cost = archsearch.count(at_data)
        row: dict[str, Any] = {
            "digest": arch.digest,
            "summary": arch.summary(),
            "spec": arch.to_json(),
            "params": cost.params,
            "macs": cost.macs,
            "macs_32": archsearch.count(arch).macs,
        }
        t = time.perf_counter()
        row["entropy"] = deepmad_entropy(at_data).score
        row["time_entropy"] = time.perf_counter() - t
        for name, ev in proxies.items():
            t = time.perf_counter()
            try:
                row[name] = ev.evaluate([arch])[0][name]
            except Exception as e:  # a failed proxy is a NaN in the table, with its reason
                row[name] = math.nan
                row[f"error_{name}"] = f"{type(e).__name__}: {e}"
            row[f"time_{name}"] = time.perf_counter() - t
        result = trainer.evaluate([arch])[0]
        row.update(result)
        rows.append(row)
        print(
            f"[{len(rows):2d}] {arch.digest[:10]} {cost.macs / 1e6:6.1f} MFLOPs "
            f"{cost.params / 1e6:5.2f}M  acc {result['accuracy']:5.2f}%  "
            f"train {result['train_seconds']:5.1f}s  total {time.monotonic() - start:6.0f}s",
            flush=True,
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    report(rows)
    print(f"wall time {time.monotonic() - start:.0f}s")


def rescore(rows: list[dict[str, Any]], proxies: dict[str, Any], space: Any) -> None:
    """Recomputes the proxies of stored rows (same architectures, same trained accuracies)."""
    from archsearch.spec import Architecture

    print(f"recomputing the proxies of {len(rows)} stored architectures; accuracies reused")
    drawn = {}
    rng = np.random.default_rng(0)  # rows without a spec: re-draw the benchmark's samples
    while len(drawn) < 10 * len(rows) and not all(
        r["digest"] in drawn or "spec" in r for r in rows
    ):
        arch = space.sample(seed=int(rng.integers(2**31)))
        drawn[arch.digest] = arch
    for row in rows:
        arch = Architecture.from_json(row["spec"]) if "spec" in row else drawn[row["digest"]]
        for name, ev in proxies.items():
            t = time.perf_counter()
            try:
                row[name] = ev.evaluate([arch])[0][name]
            except Exception:
                row[name] = math.nan
            row[f"time_{name}"] = time.perf_counter() - t
    report(rows)


def report(rows: list[dict[str, Any]]) -> None:
    acc = np.array([r["accuracy"] for r in rows])
    print(
        f"\n{len(rows)} architectures; trained top-1 {acc.min():.2f}-{acc.max():.2f}% "
        f"(median {np.median(acc):.2f}); training "
        f"{np.mean([r['train_seconds'] for r in rows]):.1f}"
        " s per architecture on average"
    )
    print(f"{'score':<10} {'spearman':>9} {'kendall':>8} {'n':>3} {'s/arch':>8}")
    table = []
    for name in (*PROXIES, *ANALYTIC):
        v = np.array([float(r[name]) for r in rows])
        ok = np.isfinite(v)
        rho = stats.spearmanr(v[ok], acc[ok]).statistic if ok.sum() > 2 else math.nan
        tau = stats.kendalltau(v[ok], acc[ok]).statistic if ok.sum() > 2 else math.nan
        key = f"time_{name}"
        per = float(np.mean([r[key] for r in rows])) if key in rows[0] else 0.0
        table.append((name, rho, tau, int(ok.sum()), per))
    for name, rho, tau, n, per in sorted(table, key=lambda t: -np.nan_to_num(t[1], nan=-9)):
        print(f"{name:<10} {rho:9.3f} {tau:8.3f} {n:3d} {per:8.3f}")


if __name__ == "__main__":
    main()
