"""DeepMAD's program solved with cvxpy against evolution on the same score, side by side.

At DeepMAD-R50's budget (4.13 GFLOPs, 25.55M params, rho <= 0.3; 1 FLOP = 1 multiply-
accumulate) on the ``convnet`` space, in one run:

* the ``deepmad`` strategy (default options, depth penalty off so that both optimise the same
  score): solve time and the designed network's entropy;
* the ``evolution`` strategy (regularized evolution, the released DeepMAD code's method) on
  the same objective (entropy, max) under the same exact feasibility test, for 10k and 100k
  evaluations: its best entropy and time; started from random members, and started from the
  released DeepMAD-R50 (a stronger baseline: it begins at the paper's answer);
* the released DeepMAD-R50 itself (48919.3).

Every network reported is checked with the exact cost model and entropy.

Usage: python benchmarks/deepmad.py [--evals 10000 100000] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path

import archsearch
from archsearch.cost import Budget
from archsearch.evaluators import EVALUATORS
from archsearch.evaluators.entropy import deepmad_entropy
from archsearch.expr import parse_expr
from archsearch.search import Gate, parse_objectives
from archsearch.solvers import Problem, Result, create_strategy
from archsearch.spec import Architecture

ROOT = Path(__file__).resolve().parents[1]
BUDGET = Budget(macs=4_130_000_000, params=25_550_000)
RHO = 0.3
RELEASED = 48919.3


def problem(space: archsearch.Space) -> Problem:
    cons = (parse_expr(f"rho <= {RHO}", what="--constraint"),)
    gate = Gate(BUDGET, cons, [EVALUATORS.create("entropy")])
    return Problem(space, parse_objectives("entropy:max"), gate, budget=BUDGET, constraints=cons)


def check(space: archsearch.Space, arch: Architecture) -> tuple[float, float, int, int]:
    cost = archsearch.count(arch)
    stats = deepmad_entropy(arch)
    assert space.contains(arch) and BUDGET.admits(cost) and stats.rho <= RHO
    return stats.score, stats.rho, cost.macs, cost.params


def run_evolution(
    space: archsearch.Space, evals: int, seed: int, init: list[Architecture]
) -> tuple[float, float, int, Architecture | None]:
    strategy = create_strategy("evolution", seed=seed, init=init)
    strategy.setup(problem(space))
    best, best_arch, done = -math.inf, None, 0
    start = time.perf_counter()
    while done < evals:
        batch = strategy.ask(min(64, evals - done))
        if not batch:
            break
        results = []
        for arch in batch:
            score = deepmad_entropy(arch).score
            results.append(Result(arch, {"entropy": score}))
            if score > best:
                best, best_arch = score, arch
        strategy.tell(results)
        done += len(batch)
    return best, time.perf_counter() - start, done, best_arch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    space = archsearch.load_space("convnet")
    released = Architecture.load(ROOT / "tests" / "fixtures" / "deepmad_r50.yaml")
    print(f"# {platform.node()} {platform.machine()}, Python {platform.python_version()}")
    print(f"budget: {BUDGET}, rho <= {RHO}; space convnet; 1 FLOP = 1 MAC")
    score, rho, macs, params = check(space, released)
    print(
        f"released DeepMAD-R50: entropy {score:.1f}, rho {rho:.4f}, {macs / 1e9:.3f} GFLOPs, "
        f"{params / 1e6:.2f}M params"
    )

    # The same score as evolution's: entropy alone (no depth penalty).
    strategy = create_strategy("deepmad", seed=args.seed, penalty=0.0)
    strategy.setup(problem(space))
    start = time.perf_counter()
    designs = strategy.ask(10)
    solve = time.perf_counter() - start
    score, rho, macs, params = check(space, designs[0])
    print(
        f"deepmad (cvxpy): entropy {score:.1f}, rho {rho:.4f}, {macs / 1e9:.3f} GFLOPs, "
        f"{params / 1e6:.2f}M params; solve {solve:.1f} s "
        f"({strategy.solution.programs_solved if strategy.solution else 0} convex programs); "
        f"{score / RELEASED:.3f}x the released score"
    )
    arch = designs[0]
    print(
        "  designed: "
        + "; ".join(
            f"s{i + 1} {st.depth}x{st.width} hidden {st.blocks[0].params['hidden']} "
            f"k{st.blocks[0].params['kernel']}"
            for i, st in enumerate(arch.stages)
        )
        + f"; stem {arch.stem.out_channels}; digest {arch.digest[:12]}"
    )
    for init_name, init in (("random start", []), ("from the released net", [released])):
        for evals in args.evals:
            best, secs, done, best_arch = run_evolution(space, evals, args.seed, init)
            if best_arch is not None:
                check(space, best_arch)
            print(
                f"evolution {init_name}, {evals} evals: best entropy {best:.1f} after {done} "
                f"evaluations in {secs:.1f} s; deepmad/evolution score {score / best:.3f}, "
                f"time {solve / secs:.3f}"
            )


if __name__ == "__main__":
    main()
