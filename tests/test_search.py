"""The driver loop: budgets, de-duplication, failures, interruption and resume."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import ClassVar

import pytest

from archsearch.cost import Budget
from archsearch.db import ACTIVE_STATES, FINISHED_STATES, Store
from archsearch.errors import BudgetError, UserError
from archsearch.evaluators import EVALUATORS, Evaluator, Metric
from archsearch.search import configure, from_run, optimize
from archsearch.spaces import Space
from archsearch.spec import Architecture

ENTROPY = "entropy:max"  # fast and torch-free: these tests are about the driver, not the score


class Flaky(Evaluator):
    """A test evaluator: NaN for some, an exception for others, Ctrl-C after a number of calls."""

    name = "flaky"
    cheap = False
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("score", "max"),)
    interrupt_after: ClassVar[int | None] = None
    calls: ClassVar[int] = 0

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        out = []
        for arch in archs:
            Flaky.calls += 1
            if Flaky.interrupt_after is not None and Flaky.calls > Flaky.interrupt_after:
                raise KeyboardInterrupt
            key = int(arch.digest[:4], 16)
            if key % 7 == 0:
                raise RuntimeError("out of memory")
            out.append({"score": math.nan if key % 5 == 0 else float(key % 1000)})
        return out


@pytest.fixture
def flaky() -> Iterator[None]:
    EVALUATORS.register("flaky", Flaky)
    Flaky.calls, Flaky.interrupt_after = 0, None
    yield
    del EVALUATORS._items["flaky"]


def test_budget_never_broken_and_no_duplicates(sqlite_url: str, hybrid: Space) -> None:
    store = Store(sqlite_url)
    search = configure(
        space=hybrid,
        objectives="entropy:max",
        budget=Budget(macs=600_000_000, params=6_000_000),
        constraints=["rho <= 0.5"],
        n_trials=300,
        seed=4,
    )
    out = optimize(store, search)
    assert out.status == "finished" and out.trials == 300
    trials = store.trials(out.run_id)
    assert len({t.digest for t in trials}) == 300
    assert all(t.cost.macs <= 600_000_000 and t.cost.params <= 6_000_000 for t in trials)
    assert all(t.values["rho"] <= 0.5 for t in trials)
    assert out.best["entropy"] == max(t.values["entropy"] for t in trials)


def test_deterministic_under_seed(sqlite_url: str, hybrid: Space) -> None:
    store = Store(sqlite_url)
    digests = []
    for _ in range(2):
        out = optimize(
            store,
            configure(space=hybrid, objectives=ENTROPY, budget=Budget(macs=10**9), n_trials=100),
        )
        digests.append([t.digest for t in store.trials(out.run_id)])
    assert digests[0] == digests[1]


def test_failures_and_nan_are_recorded_and_the_search_goes_on(
    sqlite_url: str, hybrid: Space, flaky: None
) -> None:
    store = Store(sqlite_url)
    out = optimize(store, configure(space=hybrid, objectives="score:max", n_trials=120))
    trials = store.trials(out.run_id)
    assert len(trials) == 120
    failed = [t for t in trials if t.state == "failed"]
    assert failed and all(int(t.digest[:4], 16) % 7 == 0 for t in failed)
    nan = [t for t in trials if t.state == "complete" and math.isnan(t.values["score"])]
    assert nan
    info = store.get_run(out.run_id)
    assert info.n_failed == len(failed) and info.status == "finished"


@pytest.mark.slow
def test_interrupt_keeps_finished_trials_and_resume_matches_uninterrupted(
    sqlite_url: str, hybrid: Space, flaky: None
) -> None:
    store = Store(sqlite_url)

    def search():  # type: ignore[no-untyped-def]
        return configure(space=hybrid, objectives="score:max", n_trials=150, batch_size=16, seed=9)

    reference = optimize(store, search())
    expected = [t.digest for t in store.trials(reference.run_id)]

    Flaky.calls, Flaky.interrupt_after = 0, 70
    with pytest.raises(KeyboardInterrupt):
        optimize(store, search())
    (run,) = [r for r in store.list_runs() if r.status == "interrupted"]
    kept = store.trials(run.id, states=FINISHED_STATES)
    # expensive evaluations are stored one by one: all 70 finished ones are kept, and the one
    # interrupted waits in the queue
    assert len(kept) == 70
    assert [t.digest for t in kept] == expected[:70]
    (queued,) = store.trials(run.id, states=ACTIVE_STATES)
    assert (queued.number, queued.state, queued.digest) == (70, "waiting", expected[70])

    Flaky.interrupt_after = None
    calls_before = Flaky.calls
    out = optimize(store, from_run(store.get_run(run.id).config), run_id=run.id)
    assert out.status == "finished" and out.trials == 150 and out.new_trials == 80
    assert [t.digest for t in store.trials(run.id)] == expected
    assert Flaky.calls - calls_before == 80  # none evaluated twice
    attempts = store.trial_attempts(run.id)
    assert attempts[expected[70]] == 2 and sum(attempts.values()) == 151


def test_budget_no_member_meets_is_reported_without_a_run(sqlite_url: str, hybrid: Space) -> None:
    store = Store(sqlite_url)
    search = configure(
        space=hybrid,
        objectives=ENTROPY,
        budget=Budget(macs=1_000_000),
        strategy_options={"max_tries": 300},
    )
    with pytest.raises(
        BudgetError,
        match=r"no member of space 'hybrid' meets MACs <= 1MFLOP.*"
        r"cheapest candidate seen costs \d+(\.\d+)?MFLOPs",
    ):
        optimize(store, search)
    assert store.list_runs() == []


def test_time_limit_and_exhaustion(sqlite_url: str, hybrid: Space) -> None:
    store = Store(sqlite_url)
    out = optimize(
        store, configure(space=hybrid, objectives=ENTROPY, n_trials=None, time_limit=0.5)
    )
    assert out.reason == "time limit" and out.trials > 0


def test_configure_validates(hybrid: Space) -> None:
    with pytest.raises(UserError, match="trials: 0 is out of range"):
        configure(space=hybrid, n_trials=0)
    with pytest.raises(UserError, match="trials: 2147483648 is out of range"):
        configure(space=hybrid, n_trials=2**31)
    with pytest.raises(UserError, match="time_limit: nan is out of range"):
        configure(space=hybrid, time_limit=float("nan"))
    with pytest.raises(UserError, match="batch_size: 0 is out of range"):
        configure(space=hybrid, batch_size=0)
    with pytest.raises(UserError, match="seed: -1 is out of range"):
        configure(space=hybrid, seed=-1)
    with pytest.raises(UserError, match="unknown metric 'acc'"):
        configure(space=hybrid, constraints=["acc > 0.5"])
    with pytest.raises(UserError, match="unknown evaluator 'zenn'; choose one of: .*zen"):
        configure(space=hybrid, scores=["zenn"])


def test_constraints_on_expensive_metrics_are_refused(hybrid: Space, flaky: None) -> None:
    with pytest.raises(UserError, match="'score' is measured by an expensive evaluator"):
        configure(space=hybrid, constraints=["score > 1"])


def test_resume_replays_init_candidates(sqlite_url: str, hybrid: Space) -> None:
    store = Store(sqlite_url)

    def search(n: int):  # type: ignore[no-untyped-def]
        return configure(
            space=hybrid,
            objectives=ENTROPY,
            budget=Budget(macs=1_300_000_000),
            n_trials=n,
            batch_size=8,
            seed=2,
            init=["zoo:tinyvit_5m,zoo:efficientformer_l1"],
        )

    full = optimize(store, search(48))
    part = optimize(store, search(20))
    config = store.get_run(part.run_id).config
    assert len(config.strategy_config["init"]) == 2
    resumed = from_run(config)
    resumed.n_trials = 48
    optimize(store, resumed, run_id=part.run_id)
    digests = [t.digest for t in store.trials(full.run_id)]
    assert [t.digest for t in store.trials(part.run_id)] == digests
    from archsearch import zoo

    assert digests[:2] == [zoo.get("tinyvit_5m").digest, zoo.get("efficientformer_l1").digest]


def test_the_objective_defaults_to_the_first_score() -> None:
    from archsearch.search import DEFAULT_OBJECTIVE, configure
    from archsearch.spaces import load_space
    from tests.conftest import FIXTURES

    space = load_space(str(FIXTURES / "tiny_space.yaml"))
    assert [str(o) for o in configure(space=space).objectives] == [DEFAULT_OBJECTIVE]
    s = configure(space=space, scores=["synflow", "entropy"])
    assert [str(o) for o in s.objectives] == ["synflow:max"]
    assert [e.name for e in s.evaluators] == ["synflow", "entropy"]
    s = configure(space=space, scores=["params", "zen"])  # a cost metric: always stored
    assert [str(o) for o in s.objectives] == ["params:min"]
    assert [e.name for e in s.evaluators] == ["zen"]
    s = configure(space=space, scores=["zen"], objectives="macs:min,entropy:max")
    assert [e.name for e in s.evaluators] == ["zen", "entropy"]


def test_a_strategy_with_its_own_objective_keeps_it() -> None:
    from archsearch.search import configure
    from archsearch.spaces import load_space

    s = configure(space=load_space("convnet"), strategy="deepmad")
    assert [str(o) for o in s.objectives] == ["entropy:max"]
