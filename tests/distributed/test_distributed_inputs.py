"""Ownership, heartbeats and strategy state in the store, and the one-line errors of the
distributed commands; none of these needs Ray to start."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.cost import count
from archsearch.db import RunConfig, Store, worker_id
from archsearch.distributed import Cluster, worker_url
from archsearch.distributed.cluster import connect
from archsearch.errors import UserError
from archsearch.solvers import Objective, Problem, Result, create_strategy
from archsearch.spaces import Space

CFG = RunConfig(
    space="hybrid",
    space_yaml="",
    strategy="random",
    strategy_config={},
    objectives=["entropy:max"],
    evaluators={},
)


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_trial_lifecycle_is_idempotent(db_url: str, hybrid: Space) -> None:
    store = Store(db_url)
    run = store.create_run(CFG)
    archs = [hybrid.sample(seed=i) for i in range(3)]
    ids = store.queue_trials(run, [(a, count(a)) for a in archs])
    assert [t.state for t in store.trials(run)] == ["waiting"] * 3
    assert store.begin_trials(ids, "w:1") == [True, True, True]
    assert store.finish_trial(ids[0], {"entropy": 1.0})
    assert not store.finish_trial(ids[0], {"entropy": 2.0})  # a retry stores nothing
    assert store.begin_trials(ids, "w:2") == [False, True, True]
    assert store.trial_state(ids[0]) == ("complete", {"entropy": 1.0}, None)
    store.add_intermediate(ids[1], 1, {"accuracy": 50.0})
    store.add_intermediate(ids[1], 1, {"accuracy": 60.0, "loss": math.nan})
    ((step, values),) = store.intermediates(run)[1]  # trial number 1, one step, replaced
    assert step == 1 and values["accuracy"] == 60.0 and math.isnan(values["loss"])
    assert store.trial_attempts(run) == {
        archs[0].digest: 1,
        archs[1].digest: 2,
        archs[2].digest: 2,
    }


def test_claim_refuses_a_live_owner_and_takes_over_a_dead_one(db_url: str, hybrid: Space) -> None:
    store = Store(db_url)
    run = store.create_run(CFG)  # owned by this (live) process
    arch = hybrid.sample(seed=1)
    store.queue_trials(run, [(arch, count(arch))], worker=worker_id())
    with pytest.raises(
        UserError, match=rf"--resume {run}: the run is being driven by .*--takeover"
    ):
        store.claim_run(run, owner="elsewhere:1", stale_after=60)
    claim = store.claim_run(run, owner="elsewhere:1", stale_after=60, force=True)
    assert claim.requeued == 1 and claim.previous_owner == worker_id()
    assert store.trials(run)[0].state == "waiting"
    assert not store.heartbeat(run, worker_id())  # the old owner learns it lost the run
    assert store.heartbeat(run, "elsewhere:1")
    # a dead process on this host is recognised at once, whatever its heartbeat says
    import socket

    dead = f"{socket.gethostname()}:{dead_pid()}"
    store.claim_run(run, owner=dead, stale_after=60, force=True)
    assert store.claim_run(run, owner="new:1", stale_after=3600).previous_owner == dead


@pytest.mark.parametrize("name", ["random", "evolution", "evolution-mo"])
def test_restored_state_continues_exactly(name: str, hybrid: Space) -> None:
    objectives = (Objective("macs", "min"),)
    if name == "evolution-mo":
        objectives = (Objective("macs", "min"), Objective("params", "max"))
    strategy = name.split("-")[0]

    def fresh():  # type: ignore[no-untyped-def]
        s = create_strategy(
            strategy,
            seed=3,
            **({"population": 8, "sample_size": 3} if strategy != "random" else {}),
        )
        s.setup(Problem(hybrid, objectives))
        return s

    def tell(s, batch):  # type: ignore[no-untyped-def]
        s.tell(
            [
                Result(a, {"macs": float(count(a).macs), "params": math.nan if i == 2 else 1.0})
                for i, a in enumerate(batch)
            ]
        )

    a = fresh()
    for _ in range(3):
        tell(a, a.ask(6))
    state = json.loads(json.dumps(a.state_dict(), allow_nan=False))  # PostgreSQL-safe JSON
    b = fresh()
    b.load_state_dict(state)
    for _ in range(3):
        batch_a, batch_b = a.ask(6), b.ask(6)
        assert [x.digest for x in batch_a] == [x.digest for x in batch_b]
        tell(a, batch_a)
        tell(b, batch_b)


def test_optuna_is_not_restorable_and_replays() -> None:
    assert create_strategy("optuna:tpe", seed=0).state_dict() is None


def test_sqlite_refused_on_a_multi_machine_cluster(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with pytest.raises(
        UserError, match=r"db .*a SQLite file lives on one machine.*3 nodes.*postgresql://"
    ):
        worker_url(url, Cluster(address="auto", nodes=3, cpus=12, gpus=0))
    one = worker_url("sqlite:///rel.db", Cluster(address=None, nodes=1, cpus=2, gpus=0))
    assert one == f"sqlite:///{Path('rel.db').resolve()}"  # workers get an absolute path
    pg = "postgresql+psycopg://u@db:5432/x"
    assert worker_url(pg, Cluster(address="auto", nodes=3, cpus=12, gpus=0)) == pg


def test_unreachable_address_is_one_line_fast() -> None:
    import ray

    if ray.is_initialized():
        pytest.skip("a Ray instance is up in this process")
    with pytest.raises(UserError, match=r"address 127.0.0.1:1: cannot reach a Ray head there"):
        connect("127.0.0.1:1")
    with pytest.raises(UserError, match=r"address: 'nohost' is not host:port"):
        connect("nohost")


SWEEP_ERRORS = [
    (
        "base: {space: hybrid}\ngrid:\n  stratgy: [random]\n",
        r"sweep.yaml:3: grid.stratgy: unknown setting",
    ),
    (
        "base:\n  space: hybrid\n  budgett: 1GFLOP\n",
        r"sweep.yaml:3: base.budgett: unknown key 'budgett'",
    ),
    (
        "base: {space: hybrid}\nruns:\n  - {strategy: nope}\n",
        r"sweep.yaml:3: runs\[0\]: unknown strategy 'nope'",
    ),
    ("base: {space: hybrid, trials: many}\n", r"sweep.yaml:1: base.trials: .*integer.*'many'"),
    (
        "grid: {seed: [1, 1]}\nbase: {space: hybrid}\n",
        r"two points of the sweep have the same settings",
    ),
    ("base: [1, 2\n", r"sweep.yaml:2: YAML syntax error"),
]


@pytest.mark.parametrize(("text", "message"), SWEEP_ERRORS)
def test_malformed_sweep_file_is_one_line_with_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    r = CliRunner().invoke(app, ["sweep", str(path), "--db", f"sqlite:///{tmp_path / 'a.db'}"])
    assert r.exit_code == 2, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output
    import re

    assert re.search(message, r.stderr), r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--takeover"], "--takeover applies to --resume"),
        (["--scheduler", "asha"], "--scheduler need --workers ray"),
        (["--workers", "dask"], "--workers: 'dask' must be local or ray"),
        (["--workers", "ray", "--max-concurrent", "0"], "--max-concurrent: 0 must be at least 1"),
    ],
)
def test_run_distributed_options_are_checked(
    tmp_path: Path, args: list[str], message: str
) -> None:
    r = CliRunner().invoke(
        app, ["run", "--space", "hybrid", *args, "--db", f"sqlite:///{tmp_path / 'a.db'}"]
    )
    assert r.exit_code == 2 and message in r.stderr, r.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_concurrent": 0}, "max_concurrent: 0 must be at least 1"),
        ({"cpus_per_trial": 0.0}, "cpus_per_trial/gpus_per_trial 0.0/0.0: CPUs must be positive"),
        ({"gpus_per_trial": -1.0}, "GPUs not negative"),
        ({"cpus_per_trial": float("nan")}, "cpus_per_trial/gpus_per_trial nan/0.0"),
        ({"retries": -1}, "retries: -1 must be 0 or more"),
    ],
)
def test_ray_options_name_the_parameter(options: dict[str, Any], message: str) -> None:
    from archsearch.distributed.runner import RayOptions

    with pytest.raises(UserError, match=re.escape(message)):
        RayOptions(**options)
    assert RayOptions(scheduler="asha", retries=0).given() == ["scheduler", "retries"]
    assert RayOptions().given() == []
