"""Per-trial overhead of the Ray paths, measured side by side with the in-process path.

The same search (hybrid space, DeepMAD entropy: cheap, ~1 ms per candidate) runs 100 trials
in-process and as batched Ray tasks on a local Ray; then 20 trials of a do-nothing expensive
score run in-process and as Ray Tune trials (one Tune trial per candidate). Each path's time
includes storing every trial in the same SQLite database; Ray's start-up is reported apart.
Overhead per trial = (Ray path - in-process path) / trials. Target: <= 0.5 s per cheap trial.

    python benchmarks/ray_overhead.py [--trials 100] [--tune-trials 20] [--cpus 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from typing import ClassVar

from archsearch.db import Store
from archsearch.evaluators import EVALUATORS, Evaluator, Metric
from archsearch.search import configure, optimize
from archsearch.spaces import load_space
from archsearch.spec import Architecture


class Idle(Evaluator):
    """An 'expensive' score that costs nothing: what is left is the path's own overhead."""

    name = "idle"
    cheap = False
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("idle", "max"),)

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        return [{"idle": float(int(a.digest[:6], 16) % 1000)} for a in archs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--tune-trials", type=int, default=20)
    ap.add_argument("--cpus", type=int, default=2)
    args = ap.parse_args()
    EVALUATORS.register("idle", Idle)  # type: ignore[arg-type]
    from archsearch.distributed import RayTasks, connect, worker_url
    from archsearch.distributed.tune import tune_search

    space = load_space("hybrid")
    folder = tempfile.mkdtemp(prefix="archsearch-ray-bench-")
    t = time.perf_counter()
    cluster = connect(None, num_cpus=args.cpus)
    startup = time.perf_counter() - t
    url = worker_url(f"sqlite:///{folder}/bench.db", cluster)
    store = Store(url)
    print(f"local Ray with {cluster.cpus:g} CPUs started in {startup:.1f} s; database {url}")

    def cheap():  # type: ignore[no-untyped-def]
        return configure(space=space, objectives="entropy:max", n_trials=args.trials, seed=0)

    t = time.perf_counter()
    local = optimize(store, cheap())
    t_local = time.perf_counter() - t
    t = time.perf_counter()
    remote = optimize(store, cheap(), executor=RayTasks(url))
    t_ray = time.perf_counter() - t
    same = [x.digest for x in store.trials(local.run_id)] == [
        x.digest for x in store.trials(remote.run_id)
    ]
    n = args.trials
    print(f"\ncheap score (entropy), {n} trials, batch size 32:")
    print(f"  in-process   {t_local:7.2f} s  ({1000 * t_local / n:6.1f} ms/trial)")
    print(f"  Ray tasks    {t_ray:7.2f} s  ({1000 * t_ray / n:6.1f} ms/trial)")
    print(
        f"  overhead     {(t_ray - t_local) / n:7.3f} s/trial (target <= 0.5); "
        f"ratio {t_ray / t_local:.1f}x; same candidates: {same}"
    )

    def idle():  # type: ignore[no-untyped-def]
        return configure(
            space=space, scores=["idle"], n_trials=args.tune_trials, batch_size=8, seed=0
        )

    k = args.tune_trials
    t = time.perf_counter()
    local = optimize(store, idle())
    t_local = time.perf_counter() - t
    t = time.perf_counter()
    tuned = tune_search(store, idle(), url=url)
    t_tune = time.perf_counter() - t
    same = [x.digest for x in store.trials(local.run_id)] == [
        x.digest for x in store.trials(tuned.run_id)
    ]
    print(f"\nexpensive path (a do-nothing score), {k} trials, batch size 8:")
    print(f"  in-process   {t_local:7.2f} s  ({1000 * t_local / k:6.1f} ms/trial)")
    print(f"  Tune trials  {t_tune:7.2f} s  ({1000 * t_tune / k:6.1f} ms/trial)")
    print(
        f"  overhead     {(t_tune - t_local) / k:7.3f} s/trial; same candidates: {same} "
        "(one Tune trial per candidate: for evaluations of minutes, not milliseconds)"
    )


if __name__ == "__main__":
    main()
