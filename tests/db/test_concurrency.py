"""Four processes each write 500 trials into one database: exactly 2000 trials, 0 errors.

Processes 0 and 1 write the same 500 architectures into runs A and B, processes 2 and 3
another 500 into A and B, one trial per transaction. So two writers race on each run's trial
numbering and two on each architecture's insertion. Run on SQLite (WAL, busy timeout) and on
the real PostgreSQL.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback

import pytest
from sqlalchemy import text

from archsearch.cost import count
from archsearch.db import RunConfig, Store, TrialRecord
from archsearch.spaces import load_space
from archsearch.spec import Architecture

PER_PROCESS = 500


def writer(url: str, run_id: int, specs: list[str], queue: mp.Queue) -> None:  # type: ignore[type-arg]
    errors: list[str] = []
    try:
        store = Store(url)
        for spec in specs:
            arch = Architecture.from_json(spec)
            try:
                store.add_trials(run_id, [TrialRecord(arch, count(arch), {"entropy": 1.0})])
            except Exception:
                errors.append(traceback.format_exc(limit=2))
    except Exception:
        errors.append(traceback.format_exc(limit=2))
    queue.put(errors)


@pytest.mark.slow
def test_four_writers_2000_trials(db_url: str) -> None:
    space = load_space("hybrid")
    specs: dict[str, str] = {}
    seed = 0
    while len(specs) < 2 * PER_PROCESS:
        arch = space.sample(seed=seed)
        specs.setdefault(arch.digest, arch.to_json())
        seed += 1
    sets = [list(specs.values())[:PER_PROCESS], list(specs.values())[PER_PROCESS:]]
    store = Store(db_url)
    cfg = RunConfig(
        space="hybrid",
        space_yaml="",
        strategy="random",
        strategy_config={},
        objectives=["entropy:max"],
        evaluators={},
    )
    runs = [store.create_run(cfg), store.create_run(cfg)]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=writer, args=(db_url, runs[k % 2], sets[k // 2], queue))
        for k in range(4)
    ]
    for p in procs:
        p.start()
    errors = [e for _ in procs for e in queue.get(timeout=240)]
    for p in procs:
        p.join(timeout=60)
    assert errors == [], errors[:3]
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with store.session() as s:
        assert s.execute(text("SELECT COUNT(*) FROM trials")).scalar() == 4 * PER_PROCESS
        assert s.execute(text("SELECT COUNT(*) FROM architectures")).scalar() == 2 * PER_PROCESS
        assert s.execute(text("SELECT COUNT(*) FROM scores")).scalar() == 4 * PER_PROCESS
        for run in runs:
            numbers = (
                s.execute(
                    text("SELECT number FROM trials WHERE run_id = :r ORDER BY number"), {"r": run}
                )
                .scalars()
                .all()
            )
            assert numbers == list(range(2 * PER_PROCESS))
