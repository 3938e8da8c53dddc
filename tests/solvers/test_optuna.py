"""The optuna strategy: Optuna's samplers over the space's fixed-length encoding."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from archsearch.cost import Budget, count
from archsearch.errors import UserError
from archsearch.evaluators import Table
from archsearch.expr import parse_expr
from archsearch.search import Gate, parse_objectives
from archsearch.solvers import OptunaSearch, Problem, Result, create_strategy
from archsearch.spaces import Space, load_space


@pytest.fixture(scope="module")
def nb201() -> Space:
    return load_space("nb201")


def run(strategy: OptunaSearch, problem: Problem, table: Table, rounds: int = 5, n: int = 10):
    strategy.setup(problem)
    asked = []
    for _ in range(rounds):
        batch = strategy.ask(n)
        asked += batch
        values = table.evaluate(batch)
        strategy.tell(
            [Result(a, {**count(a).as_dict(), **v}) for a, v in zip(batch, values, strict=True)]
        )
    return asked


def table_problem(space: Space, table: Table, objectives: str, bound: float) -> Problem:
    gate = Gate(Budget(), [parse_expr(f"lat_ms_dev <= {bound}")], [table])
    return Problem(
        space,
        parse_objectives(objectives, extra={m.name: m for m in table.metrics}),
        gate,
        constraints=gate.constraints,
        violations=gate.violations,
    )


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])
def test_deterministic_and_within_constraints(
    nb201: Space, nb201_table: Path, sampler: str
) -> None:
    table = Table(path=str(nb201_table))
    objectives = "acc_test:max" if sampler != "nsga2" else "acc_test:max,lat_ms_dev:min"

    def go(seed: int) -> list[str]:
        s = create_strategy(f"optuna:{sampler}", seed=seed)
        asked = run(s, table_problem(nb201, table, objectives, 5.0), table)
        for arch in asked:
            assert table.evaluate([arch])[0]["lat_ms_dev"] <= 5.0
        assert len({a.digest for a in asked}) == len(asked) == 50
        return [a.digest for a in asked]

    assert go(7) == go(7)
    assert go(7) != go(8)


def test_infeasible_proposals_are_told_as_infeasible(nb201: Space, nb201_table: Path) -> None:
    table = Table(path=str(nb201_table))
    s = create_strategy("optuna:tpe", seed=0)
    assert isinstance(s, OptunaSearch)
    run(s, table_problem(nb201, table, "acc_test:max", 3.0), table, rounds=4)
    trials = s.study.trials
    assert s.n_optuna_trials == len(trials) > 40  # the bound rejects most cells
    infeasible = [t for t in trials if any(v > 0 for v in t.constraints.values())]
    assert infeasible and all(set(t.constraints) == {"space", "lat_ms_dev <= 3.0"} for t in trials)
    for t in infeasible:
        assert t.constraints["lat_ms_dev <= 3.0"] > 0  # relative excess over the bound
    # TPE learns the feasible region: the later half of its proposals breaks the bound less
    half = len(trials) // 2
    early = sum(t in infeasible for t in trials[:half]) / half
    late = sum(t in infeasible for t in trials[half:]) / (len(trials) - half)
    assert late < early


def test_repeats_are_told_not_asked(nb201: Space) -> None:
    s = create_strategy("optuna:random", seed=0, max_repeats=1)
    s.setup(Problem(nb201, parse_objectives("macs:min")))
    seen = set()
    for _ in range(30):
        batch = s.ask(50)
        assert all(a.digest not in seen for a in batch)
        seen |= {a.digest for a in batch}
        s.tell([Result(a, {"macs": float(count(a).macs)}) for a in batch])
    assert len(seen) == 1500
    assert s.n_optuna_trials > 1500  # random proposals repeat as the space fills up
    # past max_repeats repeats in a row a candidate is drawn at random: the study stays
    # within max_repeats + 1 trials per candidate, every one told a result
    assert s.n_repeats > 0 and s.n_random > 0
    assert len(s.study.trials) == s.n_optuna_trials <= (s.max_repeats + 1) * 1500
    states = {t.state for t in s.study.trials}
    assert states == {__import__("optuna").trial.TrialState.COMPLETE}
    with pytest.raises(UserError, match="max_repeats=0 must be between 1 and 100000"):
        create_strategy("optuna:tpe", max_repeats=0)


def test_nan_and_failures_are_failed_trials(nb201: Space) -> None:
    import optuna

    s = create_strategy("optuna:tpe", seed=1)
    s.setup(Problem(nb201, parse_objectives("macs:min")))
    batch = s.ask(4)
    s.tell(
        [
            Result(batch[0], {"macs": math.nan}),
            Result(batch[1], {}, "failed"),
            Result(batch[2], {"macs": math.inf}),
            Result(batch[3], {"macs": 1.0}),
        ]
    )
    states = [t.state for t in s.study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 3
    assert len(s.ask(20)) == 20


def test_sampler_names_and_options_are_checked() -> None:
    with pytest.raises(UserError, match="optuna:cmaes: refused, CMA-ES samples categorical"):
        create_strategy("optuna:cmaes")
    with pytest.raises(UserError, match="unknown sampler; choose one of tpe, nsga2"):
        create_strategy("optuna:bayes")
    with pytest.raises(UserError, match="does not accept option 'population'"):
        create_strategy("optuna:tpe", population=3)
    with pytest.raises(UserError, match="-O constraints_func: set by archsearch"):
        create_strategy("optuna:tpe", seed=1, **{"constraints_func": None})
    with pytest.raises(UserError, match="takes no ':variant' suffix"):
        create_strategy("evolution:fast")
    s = create_strategy("optuna:nsga2", population_size=20)
    assert s.config()["sampler"] == "nsga2" and s.config()["population_size"] == 20
    again = create_strategy("optuna", **s.config())
    assert again.config() == s.config()


def test_runs_through_the_driver_and_resumes(tmp_path: Path, nb201_table: Path) -> None:
    from archsearch.db import Store
    from archsearch.search import Search, configure, from_run, optimize

    store = Store(f"sqlite:///{tmp_path / 'o.db'}")

    def tpe(trials: int) -> Search:
        return configure(
            space=load_space("nb201"),
            strategy="optuna:tpe",
            scores=["table:acc_test"],
            constraints=["lat_ms_dev <= 6"],
            n_trials=trials,
            batch_size=10,
            evaluator_options={"table": {"path": str(nb201_table)}},
        )

    first = optimize(store, tpe(30))
    resumed = from_run(store.get_run(first.run_id).config)
    resumed.n_trials = 50
    optimize(store, resumed, run_id=first.run_id)
    other = optimize(store, tpe(50))
    digests = [t.digest for t in store.trials(first.run_id)]
    assert digests == [t.digest for t in store.trials(other.run_id)]
