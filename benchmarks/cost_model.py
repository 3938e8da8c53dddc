"""Speed and exactness of ``archsearch.count`` against build + FlopCounterMode, side by side.

Samples architectures from the ``hybrid`` space at 224x224 and, on the same architectures in
one run, measures:

* ``count`` with its per-block cache cleared before every architecture (nothing reused), before
  every pass over the sample, and kept warm (as during a search);
* building the torch module and counting with ``FlopCounterMode`` (math attention kernel) on
  the CPU, i.e. a real forward pass at batch 1, the usual way to get FLOPs;
* the same on the meta device (shapes only, no arithmetic), the fastest torch-based count.

It checks that params and MACs are equal for every architecture and prints archs/s and ratios.
FLOP convention: one multiply-accumulate = one FLOP.

Usage: python benchmarks/cost_model.py [--n 2000] [--n-cpu 40] [--n-meta 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import archsearch
from archsearch.cost.counting import block_cost
from archsearch.cost.reference import measure_arch


def torch_cpu_count(arch: archsearch.Architecture) -> tuple[int, int]:
    model = archsearch.build(arch).eval()
    x = torch.randn(1, *arch.input_shape)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        model(x)
    return sum(p.numel() for p in model.parameters()), fc.get_total_flops() // 2


def time_count(archs: list[archsearch.Architecture], cache: str, repeats: int = 5) -> float:
    """Best-of-``repeats`` seconds per architecture for one pass of count over ``archs``.

    ``cache``: "none" clears the per-block cache before every architecture (nothing reused),
    "pass" before every pass (blocks shared by architectures of the pass are reused), "warm"
    never.
    """
    passes = []
    for _ in range(repeats):
        if cache == "pass":
            block_cost.cache_clear()
        elapsed = 0.0
        for a in archs:
            if cache == "none":
                block_cost.cache_clear()
            t = time.perf_counter()
            archsearch.count(a)
            elapsed += time.perf_counter() - t
        passes.append(elapsed / len(archs))
    return min(passes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="architectures timed with count")
    ap.add_argument("--n-cpu", type=int, default=40, help="of them, built and run on the CPU")
    ap.add_argument("--n-meta", type=int, default=200, help="of them, built on the meta device")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(os.cpu_count() or 1)
    space = archsearch.load_space("hybrid")
    archs = [space.sample(seed=args.seed + i) for i in range(args.n)]
    macs = [archsearch.count(a).macs for a in archs]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    print(
        f"{args.n} hybrid architectures at 224x224, GFLOPs (1 FLOP = 1 MAC) median "
        f"{statistics.median(macs) / 1e9:.2f}, range {min(macs) / 1e9:.2f}-{max(macs) / 1e9:.2f}"
    )

    cold = time_count(archs, "none")
    per_pass = time_count(archs, "pass")
    warm = time_count(archs, "warm")

    mismatches = 0
    t = time.perf_counter()
    for a in archs[: args.n_meta]:
        if measure_arch(a) != archsearch.count(a):
            mismatches += 1
    meta = (time.perf_counter() - t) / args.n_meta

    t = time.perf_counter()
    for a in archs[: args.n_cpu]:
        c = archsearch.count(a)
        if torch_cpu_count(a) != (c.params, c.macs):
            mismatches += 1
    cpu = (time.perf_counter() - t) / args.n_cpu

    print(f"{'method':44s} {'archs/s':>10s} {'ms/arch':>9s} {'count is faster':>16s}")
    rows = [
        ("count, no cache (cleared before each arch)", cold),
        ("count, cache cleared before each pass", per_pass),
        ("count, cache warm", warm),
        (f"build + FlopCounterMode, meta device (n={args.n_meta})", meta),
        (f"build + FlopCounterMode, CPU forward (n={args.n_cpu})", cpu),
    ]
    for name, sec in rows:
        ratio = f"{sec / cold:15.0f}x" if sec > cold else f"{'-':>16s}"
        print(f"{name:44s} {1 / sec:10.0f} {sec * 1e3:9.3f} {ratio}")
    checked = args.n_meta + args.n_cpu
    print(
        f"exactness: {checked - mismatches}/{checked} architectures with params and MACs equal "
        f"to the torch count ({mismatches} mismatches); activations checked on the meta runs"
    )
    print(
        f"targets: exact {'OK' if mismatches == 0 else 'FAILED'}; >= 10,000 archs/s "
        f"{'OK' if 1 / cold >= 10_000 else 'MISSED'} ({1 / cold:,.0f} cold); >= 1000x faster "
        f"than build + FlopCounterMode on the CPU {'OK' if cpu / cold >= 1000 else 'MISSED'} "
        f"({cpu / cold:,.0f}x), on the meta device {meta / cold:,.0f}x"
    )


if __name__ == "__main__":
    main()
