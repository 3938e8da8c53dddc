"""The service under load: concurrent clients against ``archsearch serve`` while a run writes.

A fresh database (SQLite file, then PostgreSQL unless --no-postgres) holds a run of 100,000
synthetic trials (as ``benchmarks/frontier.py`` loads them) and a run of 200 real ``hybrid``
architectures (for the architecture page). ``archsearch serve`` starts on a free loopback
port; 32 client threads then send a bounded number of requests each, cycling through the run
list, the 100,000-trial run's Pareto front and an architecture page, while another process
adds trials to the same database through the store in batches of 8 (a search's write path).
Reported: p50/p99 latency per endpoint, requests per second, every status other than 200
(none expected; any 5xx is a failure), and the writer's trials, checked against the store
afterwards (nothing lost).

    python benchmarks/service_load.py [--clients 32] [--requests 30] [--no-postgres]
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from archsearch.cost import count
from archsearch.db import RunConfig, Store, TrialRecord
from archsearch.spaces import load_space

sys.path.insert(0, str(Path(__file__).parent))
from frontier import WRITER, fresh_postgres, load


def real_run(url: str) -> list[str]:
    space = load_space("hybrid")
    store = Store(url)
    run = store.create_run(
        RunConfig(
            space="hybrid",
            space_yaml=space.source or "",
            strategy="random",
            strategy_config={},
            objectives=["acc:max"],
            evaluators={},
        )
    )
    archs = [space.sample(seed=10_000 + s) for s in range(200)]
    store.add_trials(
        run, [TrialRecord(a, count(a), {"acc": s / 200}) for s, a in enumerate(archs)]
    )
    store.set_run_status(run, "finished")
    return [a.digest for a in archs]


def client(port: int, paths: list[str], n: int, offset: int) -> list[tuple[str, int, float]]:
    out = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for i in range(n):
        path = paths[(i + offset) % len(paths)]
        t = time.perf_counter()
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            status = r.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            status = -1
        out.append((path, status, time.perf_counter() - t))
    conn.close()
    return out


def bench(url: str, label: str, clients: int, requests: int, writing: int) -> None:
    print(f"{label}:")
    big = load(url, [100_000])[0]
    digests = real_run(url)
    exe = Path(sys.executable).with_name("archsearch")
    serve = subprocess.Popen(
        [str(exe), "serve", "--db", url, "--port", "0", "--workers", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert serve.stderr is not None
    port = int(re.search(r"127\.0\.0\.1:(\d+)/", serve.stderr.readline())[1])  # type: ignore[index]
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(writing)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    paths = [
        "/api/v1/runs",
        f"/api/v1/runs/{big}/pareto",
        *[f"/api/v1/architectures/{d}" for d in digests[:3]],
    ]
    kinds = {"/api/v1/runs": "run list", f"/api/v1/runs/{big}/pareto": "front of 100k"}
    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [
            r
            for part in pool.map(lambda k: client(port, paths, requests, k), range(clients))
            for r in part
        ]
    wall = time.perf_counter() - t
    out, _ = writer.communicate(timeout=writing + 120)
    stored, _ = out.split()
    serve.terminate()
    _, log = serve.communicate(timeout=60)
    if log.strip():
        print("  the service's log:", *log.strip().splitlines()[-12:], sep="\n    ")
    by_kind: dict[str, list[float]] = defaultdict(list)
    statuses: dict[int, int] = defaultdict(int)
    for path, status, sec in results:
        by_kind[kinds.get(path, "architecture page")].append(sec)
        statuses[status] += 1
    for kind, secs in by_kind.items():
        secs.sort()
        p99 = secs[min(len(secs) - 1, int(0.99 * len(secs)))]
        print(
            f"  {kind:>17}: p50 {statistics.median(secs) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
            f" ({len(secs)} requests)"
        )
    bad = {s: n for s, n in statuses.items() if s != 200}
    print(
        f"  {len(results)} requests from {clients} clients in {wall:.1f} s "
        f"({len(results) / wall:.0f}/s); statuses other than 200: {bad or 'none'}"
    )
    store = Store(url)
    found = sum(r.n_complete for r in store.list_runs() if r.config.space == "hybrid") - 200
    print(
        f"  the writer stored {int(stored):,} trials in {writing} s beside the load; the store "
        f"holds {found:,} of them"
    )
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=30, help="per client")
    ap.add_argument("--writing", type=int, default=30, help="seconds the writer writes")
    ap.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="archsearch-load-") as folder:
        bench(f"sqlite:///{folder}/load.db", "SQLite", args.clients, args.requests, args.writing)
    if args.no_postgres:
        return
    with fresh_postgres(args.postgres, "archsearch_load") as url:
        bench(url, "PostgreSQL", args.clients, args.requests, args.writing)


if __name__ == "__main__":
    main()
