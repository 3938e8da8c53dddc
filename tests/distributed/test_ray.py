"""The Ray paths against a local Ray (2 CPUs), on SQLite and the real PostgreSQL: batched
tasks, worker faults, Tune trials with ASHA, sweeps. Skipped, saying why, if Ray cannot start.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from archsearch.db import Store
from archsearch.search import configure, optimize
from archsearch.spaces import Space, load_space
from tests.distributed import helpers

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[object]:
    try:
        import cloudpickle
        import ray

        from archsearch.distributed import connect

        cloudpickle.register_pickle_by_value(helpers)
        cluster = connect(None, num_cpus=2)
    except Exception as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"Ray cannot start here: {e}".splitlines()[0])
    yield cluster
    ray.shutdown()


def digests(store: Store, run: int) -> list[str]:
    return [t.digest for t in store.trials(run)]


@pytest.mark.slow
def test_tasks_store_what_the_in_process_path_stores(
    ray_cluster: object, db_url: str, hybrid: Space
) -> None:
    from archsearch.distributed import RayTasks, worker_url

    url = worker_url(db_url, ray_cluster)  # type: ignore[arg-type]
    store = Store(url)

    def search():  # type: ignore[no-untyped-def]
        return configure(space=hybrid, objectives="entropy:max", n_trials=40, batch_size=16)

    local = optimize(store, search())
    remote = optimize(store, search(), executor=RayTasks(url, max_concurrent=2))
    assert remote.trials == 40 and digests(store, remote.run_id) == digests(store, local.run_id)
    assert set(store.trial_attempts(remote.run_id).values()) == {1}
    assert store.get_run(remote.run_id).status == "finished"


def test_a_killed_worker_is_retried_without_losing_or_duplicating(
    ray_cluster: object, sqlite_url: str, tmp_path: Path, hybrid: Space
) -> None:
    from archsearch.distributed import RayTasks, worker_url

    url = worker_url(sqlite_url, ray_cluster)  # type: ignore[arg-type]
    store = Store(url)
    marks = tmp_path / "marks"
    marks.mkdir()
    search = configure(
        space=hybrid,
        scores=["killer"],
        objectives="killer:max",
        n_trials=12,
        batch_size=12,
        evaluator_options={"killer": {"marks": str(marks), "prefixes": "0"}},
    )
    out = optimize(store, search, executor=RayTasks(url, chunk=3, retries=2))
    trials = store.trials(out.run_id)
    killed = {p.name for p in marks.iterdir()}
    assert killed, "no candidate triggered the fault; pick another prefix"
    assert len(trials) == len({t.digest for t in trials}) == 12
    assert all(t.state == "complete" for t in trials)
    attempts = store.trial_attempts(out.run_id)
    # every trial of a chunk whose worker died was started again; none more than twice
    assert {attempts[d] for d in killed} == {2} and max(attempts.values()) == 2


@pytest.mark.slow
def test_a_worker_dying_every_time_fails_its_trials_after_bounded_retries(
    ray_cluster: object, sqlite_url: str, tmp_path: Path, hybrid: Space
) -> None:
    from archsearch.distributed import RayTasks, worker_url

    url = worker_url(sqlite_url, ray_cluster)  # type: ignore[arg-type]
    store = Store(url)
    search = configure(
        space=hybrid,
        scores=["killer"],
        objectives="killer:max",
        n_trials=4,
        batch_size=4,
        evaluator_options={"killer": {"marks": str(tmp_path), "always": True}},
    )
    out = optimize(store, search, executor=RayTasks(url, chunk=4, retries=1))
    trials = store.trials(out.run_id)
    assert [t.state for t in trials] == ["failed"] * 4
    assert set(store.trial_attempts(out.run_id).values()) == {2}  # one try, one retry
    with store.session() as s:
        from sqlalchemy import text

        errors = s.execute(text("SELECT DISTINCT error FROM trials")).scalars().all()
    assert len(errors) == 1 and errors[0].startswith("ray task: ")


@pytest.mark.slow
def test_tune_trials_with_asha_store_intermediate_results(
    ray_cluster: object, sqlite_url: str, tmp_path: Path
) -> None:
    from archsearch.distributed import worker_url
    from archsearch.distributed.tune import tune_search
    from tests.evaluators.test_training import easy_task

    data = easy_task(tmp_path / "easy.npz")
    url = worker_url(sqlite_url, ray_cluster)  # type: ignore[arg-type]
    store = Store(url)
    space = load_space(str(Path(__file__).parents[1] / "fixtures" / "tiny_space.yaml"))
    options = {"data": data, "epochs": 3, "batch_size": 32, "augment": "none", "threads": 1}

    def search():  # type: ignore[no-untyped-def]
        return configure(
            space=space,
            strategy="random",
            scores=["train"],
            n_trials=6,
            batch_size=3,
            seed=1,
            evaluator_options={"train": options},
        )

    out = tune_search(store, search(), url=url, scheduler="asha", max_concurrent=2)
    trials = store.trials(out.run_id)
    assert out.status == "finished" and len(trials) == 6
    assert {t.state for t in trials} <= {"complete", "pruned"}
    steps = store.intermediates(out.run_id)
    # every trial reported after its first epoch; completed ones after each but the last
    assert set(steps) == {t.number for t in trials}
    for t in trials:
        reported = [s for s, _ in steps[t.number]]
        if t.state == "complete":
            assert reported == [1, 2] and t.values["epochs"] == pytest.approx(3)
        else:
            assert reported[0] == 1 and t.values["accuracy"] == steps[t.number][-1][1]["accuracy"]
    from archsearch.errors import UserError

    again = search()
    with pytest.raises(UserError, match="scheduler: unknown scheduler 'hyperband'"):
        tune_search(store, again, url=url, scheduler="hyperband")


@pytest.mark.slow
def test_sweep_runs_every_point_and_records_failures(
    ray_cluster: object, db_url: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from archsearch.cli import app

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "name: tiny\n"
        "base: {space: hybrid, score: entropy, trials: 16, batch_size: 8}\n"
        "grid:\n  strategy: [random, evolution]\n  seed: [0, 1]\n"
        "runs:\n  - {budget: 2GFLOP}\n  - {budget: 1MFLOP, option: {max_tries: 20}}\n"
    )
    runner = CliRunner()
    r = runner.invoke(app, ["sweep", str(sweep), "--db", db_url, "-f", "json"])
    assert r.exit_code == 1, r.output  # some runs failed, and said so
    rows = json.loads(r.stdout)
    assert len(rows) == 8
    ok = [x for x in rows if x["status"] == "finished"]
    bad = [x for x in rows if x["status"] == "failed"]
    assert len(ok) == 4 and all(x["trials"] == 16 for x in ok)
    assert len(bad) == 4 and all("BudgetError" in x["error"] for x in bad)
    store = Store(db_url)
    assert {r.sweep for r in store.list_runs()} == {"tiny"}
    # again: finished runs are skipped, nothing is duplicated
    r = runner.invoke(app, ["sweep", str(sweep), "--db", db_url, "-f", "json"])
    assert len(store.list_runs()) == 8
    assert sum(x.n_complete for x in store.list_runs()) == 64
