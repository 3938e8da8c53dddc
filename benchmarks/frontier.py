"""The frontier database at a million trials: Pareto fronts timed on SQLite and PostgreSQL.

Loads three runs of synthetic trials (10,000, 100,000 and 1,000,000; the 100,000-trial run
re-uses architectures of the million-trial run, so that the cross-run front deduplicates)
into a fresh SQLite file and a fresh PostgreSQL database, then times, per database:

* the two-objective front (``macs:min, acc:max``: what ``archsearch pareto`` shows by
  default) at each size, and the row-by-row path it replaced (every trial's row fetched, the
  front computed over the rows) at 10,000 and 100,000 trials;
* a three-objective front (``acc:max, lat:min, params:min``), the front with a filter
  (``--where "params < 5M and lat <= 4"``) and the front across the three runs (1.11 M trials);
* ``archsearch pareto`` and ``archsearch runs`` end to end (a new process, start-up included);
* the same front and run list while another process adds trials to the same database through
  the store (batches of 8, the write path of a search), with the writer's throughput.

Synthetic data, said plainly: architectures are rows with random costs (MACs log-uniform over
10 M..1 G, params and activations proportional with noise), not specs; ``acc`` rises with
log MACs plus noise (2% missing, as failed proxies), ``lat`` is proportional to MACs with
log-normal noise. They are written by bulk inserts of the store's own tables, with each run's
columns (``trial_columns``) packed in 32,768-trial batches, as merging leaves them. Times are
the median of ``--repeats``; the store is opened anew for each.

    python benchmarks/frontier.py [--sizes 10000,100000,1000000] [--repeats 3]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, insert

from archsearch.db import RunConfig, Store
from archsearch.db.columns import MERGE_BELOW, pack
from archsearch.db.models import (
    ArchitectureModel,
    ScoreModel,
    TrialColumnsModel,
    TrialModel,
)
from archsearch.expr import parse_expr
from archsearch.pareto import front_rows

TWO = [("macs", "min"), ("acc", "max")]
THREE = [("acc", "max"), ("lat", "min"), ("params", "min")]
WHERE = "params < 5M and lat <= 4"


def synthetic(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    macs = np.exp(rng.uniform(np.log(1e7), np.log(1e9), n)).astype(np.int64)
    params = (macs / rng.uniform(20, 200, n)).astype(np.int64)
    activations = (macs / rng.uniform(50, 500, n)).astype(np.int64)
    acc = 0.6 + 0.08 * np.log10(macs / 1e7) + rng.normal(0, 0.02, n)
    acc[rng.random(n) < 0.02] = np.nan
    lat = macs / 1e8 * rng.lognormal(0, 0.25, n)
    return {"params": params, "macs": macs, "activations": activations, "acc": acc, "lat": lat}


def load(url: str, sizes: list[int]) -> list[int]:
    """Creates one run per size; returns the run ids (smallest first)."""
    store = Store(url)
    biggest = max(sizes)
    data = synthetic(biggest, 0)
    engine = store.engine
    t = time.perf_counter()
    with engine.begin() as conn:
        for lo in range(0, biggest, 50_000):
            hi = min(lo + 50_000, biggest)
            conn.execute(
                insert(ArchitectureModel),
                [
                    {
                        "id": i + 1,
                        "digest": f"{i:064x}",
                        "spec": "{}",
                        "params": int(data["params"][i]),
                        "macs": int(data["macs"][i]),
                        "activations": int(data["activations"][i]),
                    }
                    for i in range(lo, hi)
                ],
            )
    runs = []
    next_trial = 1
    for k, n in enumerate(sorted(sizes)):
        run = store.create_run(
            RunConfig(
                space="synthetic",
                space_yaml="",
                strategy="random",
                strategy_config={"seed": k},
                objectives=["acc:max"],
                evaluators={},
            )
        )
        runs.append(run)
        rng = np.random.default_rng(100 + k)
        archs = rng.choice(biggest, n, replace=False) if n < biggest else np.arange(biggest)
        archs.sort()
        noise = rng.normal(0, 0.005, n)  # another run measures slightly differently
        acc = data["acc"][archs] + (noise if k else 0)
        lat = data["lat"][archs]
        ids = np.arange(next_trial, next_trial + n)
        next_trial += n
        with engine.begin() as conn:
            for lo in range(0, n, 50_000):
                part = range(lo, min(lo + 50_000, n))
                conn.execute(
                    insert(TrialModel),
                    [
                        {
                            "id": int(ids[i]),
                            "run_id": run,
                            "number": i,
                            "architecture_id": int(archs[i]) + 1,
                            "state": "complete",
                            "attempts": 1,
                        }
                        for i in part
                    ],
                )
                conn.execute(
                    insert(ScoreModel),
                    [
                        {
                            "trial_id": int(ids[i]),
                            "run_id": run,
                            "metric": m,
                            "value": None if np.isnan(v[i]) else float(v[i]),
                        }
                        for i in part
                        for m, v in (("acc", acc), ("lat", lat))
                    ],
                )
            for lo in range(0, n, MERGE_BELOW):
                s = slice(lo, lo + MERGE_BELOW)
                costs = np.stack([data[c][archs[s]] for c in ("params", "macs", "activations")])
                conn.execute(
                    insert(TrialColumnsModel),
                    [
                        pack(
                            run,
                            ids[s],
                            archs[s] + 1,
                            costs,
                            ["acc", "lat"],
                            np.stack([acc[s], lat[s]]),
                        )
                    ],
                )
        store.set_run_status(run, "finished")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("architectures", "trials"):  # ids were given explicitly
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            conn.exec_driver_sql("VACUUM ANALYZE")
    print(f"  loaded {sum(sizes):,} trials in {time.perf_counter() - t:.0f} s")
    store.close()
    return runs


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def cli(url: str, *args: str) -> float:
    exe = Path(sys.executable).with_name("archsearch")
    t = time.perf_counter()
    subprocess.run([str(exe), *args, "--db", url], check=True, capture_output=True)
    return time.perf_counter() - t


WRITER = """
import sys, time
from archsearch.cost import count
from archsearch.db import RunConfig, Store, TrialRecord
from archsearch.spaces import load_space
space = load_space("hybrid")
store = Store(sys.argv[1])
config = RunConfig(space="hybrid", space_yaml=space.source or "", strategy="random",
                   strategy_config={}, objectives=["acc:max"], evaluators={})
archs = [space.sample(seed=s) for s in range(4000)]
costs = [count(a) for a in archs]
print("ready", flush=True)
n, t = 0, time.perf_counter()
while time.perf_counter() - t < float(sys.argv[2]):
    if n % len(archs) == 0:  # a run holds each architecture once: start another
        run = store.create_run(config)
    i = n % len(archs)
    store.add_trials(run, [TrialRecord(a, c, {"acc": 0.5, "lat": 1.0})
                           for a, c in zip(archs[i:i + 8], costs[i:i + 8])])
    n += 8
print(n, time.perf_counter() - t, flush=True)
"""


def under_writes(url: str, big: int, repeats: int) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"
    fronts, lists = [], []
    while writer.poll() is None:  # the writer adds trials for 20 s
        store = Store(url)
        fronts.append(timed(lambda s=store: s.pareto(big, TWO), 1)[0])
        lists.append(timed(lambda s=store: s.list_runs(), 1)[0])
        store.close()
        time.sleep(0.2)
    out, err = writer.communicate(timeout=60)
    if writer.returncode != 0:
        raise SystemExit(f"the writer failed: {err.strip().splitlines()[-1]}")
    trials, seconds = out.strip().splitlines()[-1].split()
    done = f"{int(trials):,} trials in {float(seconds):.0f} s"
    print(
        f"  while a search writes: front {statistics.median(fronts):.3f} s (max "
        f"{max(fronts):.3f}), runs list {statistics.median(lists):.3f} s (max "
        f"{max(lists):.3f}), {len(fronts)} queries; the writer: {done}"
    )


def bench(url: str, label: str, sizes: list[int], repeats: int) -> None:
    print(f"{label}:")
    runs = load(url, sizes)
    by_size = dict(zip(sorted(sizes), runs, strict=True))
    for n, run in by_size.items():
        store = Store(url)
        sec, front = timed(lambda s=store, r=run: s.pareto(r, TWO), repeats)
        line = f"  {n:>9,} trials: 2-objective front {sec:.3f} s ({len(front)} trials)"
        if n <= 100_000:
            old, _ = timed(
                lambda s=store, r=run: front_rows(s.results(r, metrics=["acc"]), TWO), repeats
            )
            line += f"; row by row {old:.3f} s ({old / sec:.0f}x)"
        print(line)
        store.close()
    big = by_size[max(sizes)]
    store = Store(url)
    sec, front = timed(lambda: store.pareto(big, THREE), repeats)
    print(f"  3-objective front {sec:.3f} s ({len(front)} trials)")
    expr = parse_expr(WHERE)
    sec, front = timed(lambda: store.pareto(big, TWO, where=expr), repeats)
    print(f"  front --where {WHERE!r} {sec:.3f} s ({len(front)} trials)")
    sec, (front, n) = timed(lambda: store.pareto_across(runs, TWO), repeats)
    print(f"  front across runs {runs} {sec:.3f} s ({n:,} architectures, {len(front)} on it)")
    store.close()
    pareto_cli = statistics.median(
        cli(url, "pareto", "--run", str(big), "-f", "json") for _ in range(repeats)
    )
    runs_cli = statistics.median(cli(url, "runs", "-f", "json") for _ in range(repeats))
    print(
        f"  archsearch pareto --run {big}: {pareto_cli:.2f} s; archsearch runs: {runs_cli:.2f} s"
    )
    under_writes(url, big, repeats)


@contextmanager
def fresh_postgres(admin_url: str, prefix: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(f"{os.cpu_count()} CPUs; sizes {sizes}; median of {args.repeats}")
    with tempfile.TemporaryDirectory(prefix="archsearch-frontier-") as folder:
        bench(f"sqlite:///{folder}/frontier.db", "SQLite", sizes, args.repeats)
    if args.no_postgres:
        return
    with fresh_postgres(args.postgres, "archsearch_bench") as url:
        bench(url, "PostgreSQL", sizes, args.repeats)


if __name__ == "__main__":
    main()
