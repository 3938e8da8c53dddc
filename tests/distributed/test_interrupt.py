"""Interruptions: Ctrl-C and SIGTERM keep every evaluated candidate (cheap scores too, which
are stored in time-bounded chunks), mark the run interrupted and resumable; `--takeover` of a
run whose owner is alive is a clean handover."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from archsearch.db import FINISHED_STATES, Store
from tests.distributed.test_crash import archsearch, finished

ARGS = [
    "run", "--space", "hybrid", "--trials", "64", "--batch-size", "32", "--seed", "3",
    "--budget", "2GFLOP",
]  # fmt: skip


def wait_for(store_path: Path, db: str, n: int, timeout: float = 60) -> Store:
    deadline = time.monotonic() + timeout
    store = None
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if store_path.exists():
            store = store or Store(db)
            runs = store.list_runs()
            if runs and len(finished(store, runs[0].id)) >= n:
                return store
    raise AssertionError(f"fewer than {n} trials stored in {timeout}s")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_keeps_every_evaluated_candidate_of_a_cheap_batch(
    tmp_path: Path, sig: signal.Signals
) -> None:
    db = f"sqlite:///{tmp_path / 'i.db'}"
    log = tmp_path / "evaluated.txt"
    env = {**os.environ, "ARCHSEARCH_DB": db, "LOGGED_EVAL": str(log), "LOGGED_SLEEP": "0.2"}
    Store(db)  # the schema (and the store's imports) before the clock starts: on a loaded
    # machine they took long enough for the run to end before the signal
    proc = archsearch([*ARGS, "--score", "slowcheap"], env)
    # The first batch (32 candidates, 6.4 s) is stored in chunks at least every 2 s.
    store = wait_for(tmp_path / "i.db", db, 1)
    time.sleep(0.3)
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == (143 if sig == signal.SIGTERM else 130)
    err = proc.stderr.read() if proc.stderr else ""
    assert "archsearch run --resume 1" in err and "Traceback" not in err
    evaluated = log.read_text().split()
    stored = finished(store, 1)
    # every evaluated candidate is kept, but for the one in flight at the signal
    assert set(stored) <= set(evaluated) and len(evaluated) - len(stored) <= 1
    assert 0 < len(stored) < 32  # the interruption fell inside the first batch
    assert store.get_run(1).status == "interrupted"

    resumed = archsearch(["run", "--resume", "1"], {**env, "LOGGED_SLEEP": "0"})
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read() if resumed.stderr else ""
    after = finished(store, 1)
    again = log.read_text().split()[len(evaluated) :]
    assert not set(stored) & set(again)  # nothing stored is evaluated again
    assert len(after) == len(set(after)) == 64
    assert store.get_run(1).status == "finished"


@pytest.mark.slow
def test_takeover_of_a_live_owner_is_a_clean_handover(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    log = tmp_path / "evaluated.txt"
    env = {**os.environ, "ARCHSEARCH_DB": db, "LOGGED_EVAL": str(log), "LOGGED_SLEEP": "0.1"}
    first = archsearch([*ARGS, "--score", "logged", "--batch-size", "8"], env)
    store = wait_for(tmp_path / "t.db", db, 10)
    refused = archsearch(["run", "--resume", "1"], env)
    assert refused.wait(timeout=60) == 2
    assert "being driven by" in (refused.stderr.read() if refused.stderr else "")

    second = archsearch(["run", "--resume", "1", "--takeover"], {**env, "LOGGED_SLEEP": "0"})
    assert second.wait(timeout=120) == 0, second.stderr.read() if second.stderr else ""
    assert first.wait(timeout=60) == 2  # stopped at its next write, without a traceback
    err = first.stderr.read() if first.stderr else ""
    assert "was taken over by" in err and "Traceback" not in err
    info = store.get_run(1)
    assert info.status == "finished" and info.error is None
    trials = store.trials(1, states=FINISHED_STATES)
    assert len(trials) == len({t.digest for t in trials}) == 64
    assert all(t.state == "complete" for t in trials)
