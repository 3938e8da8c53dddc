"""Conformance of every registered sampling strategy, and properties of evolution.

Every strategy that samples: deterministic under a seed, never proposes an infeasible or a
duplicate candidate, and survives failed evaluations and NaN/inf scores. Solvers that design a
few networks from the budget (``samples = False``, DeepMAD) have the same checks in their own
module. Optuna's samplers cost time per proposal in proportion to the labels (306 in
``hybrid``) times the trials, so the suite runs them on ``nb201`` (6 labels); their behaviour
on a constrained space is tested in ``test_optuna.py``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from archsearch.errors import UserError
from archsearch.search import parse_objectives
from archsearch.solvers import STRATEGIES, Problem, create_strategy
from archsearch.spaces import Space, load_space
from archsearch.testing import strategies as conformance

SAMPLERS = [n for n in STRATEGIES.names() if STRATEGIES.get(n).samples]
SLOW_ON_HYBRID = {"optuna"}


@pytest.fixture
def space(request: pytest.FixtureRequest, hybrid: Space) -> Space:
    """The space a strategy's conformance runs on: hybrid, or nb201 for Optuna's samplers."""
    name = request.node.callspec.params["name"]
    return load_space("nb201") if name in SLOW_ON_HYBRID else hybrid


def evolution_options(name: str) -> dict[str, int]:
    return {"population": 16} if name == "evolution" else {}


@pytest.mark.parametrize("objectives", list(conformance.OBJECTIVES))
@pytest.mark.parametrize("name", SAMPLERS)
def test_deterministic_under_seed(space: Space, name: str, objectives: str) -> None:
    conformance.check_deterministic(name, space, objectives, **evolution_options(name))


@pytest.mark.parametrize("objectives", list(conformance.OBJECTIVES))
@pytest.mark.parametrize("name", SAMPLERS)
def test_never_infeasible_or_duplicate(space: Space, name: str, objectives: str) -> None:
    conformance.check_feasible_and_new(name, space, objectives)


@pytest.mark.parametrize("objectives", list(conformance.OBJECTIVES))
@pytest.mark.parametrize("name", SAMPLERS)
def test_survives_nan_inf_and_failures(space: Space, name: str, objectives: str) -> None:
    conformance.check_survives_bad_scores(name, space, objectives)


@pytest.mark.parametrize("name", SAMPLERS)
def test_exhaustion_returns_short(space: Space, name: str) -> None:
    conformance.check_exhaustion(name, space)


def test_unknown_strategy_and_options() -> None:
    with pytest.raises(UserError, match="unknown strategy 'bayes'; choose one of: contraction,"):
        create_strategy("bayes")
    with pytest.raises(UserError, match="does not accept option 'pop'"):
        create_strategy("evolution", pop=3)
    with pytest.raises(UserError, match="sample_size=99 must be between"):
        create_strategy("evolution", sample_size=99)


def best_entropy(space: Space, name: str, seed: int, trials: int = 320) -> float:
    feasible = conformance.within_budget
    results_for = conformance.results_for
    strategy = create_strategy(name, seed=seed)
    strategy.setup(Problem(space, parse_objectives("entropy:max"), feasible))
    best = -math.inf
    while trials > 0:
        batch = strategy.ask(min(32, trials))
        results = results_for(batch)
        best = max([best, *(r.values["entropy"] for r in results)])
        strategy.tell(results)
        trials -= len(batch)
    return best


@pytest.mark.slow
def test_regularized_evolution_beats_random(hybrid: Space) -> None:
    # At 1000 trials evolution won on each of 5 seeds tried; at 300-600 it did not always.
    for seed in range(3):
        evo = best_entropy(hybrid, "evolution", seed, trials=1000)
        assert evo > best_entropy(hybrid, "random", seed, trials=1000), seed


@pytest.mark.slow
def test_nsga2_front_dominates_random_front(hybrid: Space) -> None:
    from archsearch.pareto import pareto_front_mask, to_minimisation

    def front(name: str) -> list[list[float]]:
        strategy = (
            create_strategy(name, seed=1, population=32)
            if name == "evolution"
            else (create_strategy(name, seed=1))
        )
        strategy.setup(
            Problem(hybrid, parse_objectives("macs:min,entropy:max"), conformance.within_budget)
        )
        rows = []
        for _ in range(10):
            batch = strategy.ask(32)
            res = conformance.results_for(batch)
            rows += [[r.values["macs"], r.values["entropy"]] for r in res]
            strategy.tell(res)
        v = to_minimisation(rows, ["min", "max"])
        return v[pareto_front_mask(v)].tolist()

    evo, rnd = front("evolution"), front("random")
    # hypervolume w.r.t. a common reference point
    ref = [max(p[0] for p in evo + rnd) * 1.01, max(p[1] for p in evo + rnd) * 0.99 + 1]

    def hv(points: list[list[float]]) -> float:
        pts = sorted(points)
        area, prev_y = 0.0, ref[1]
        for x, y in pts:
            if y < prev_y:
                area += (ref[0] - x) * (prev_y - y)
                prev_y = y
        return area

    assert hv(evo) > hv(rnd)


@pytest.mark.parametrize("name", SAMPLERS)
def test_init_candidates_are_asked_first_once(space: Space, name: str) -> None:
    from archsearch import zoo

    seeds = [zoo.get("efficientformer_l1"), zoo.get("tinyvit_5m")]
    if name in SLOW_ON_HYBRID:  # nb201 members stand in for the zoo's
        seeds = [space.sample(seed=1), space.sample(seed=2)]
    conformance.check_init_first(name, space, seeds)


def _bounded_nb201(bound: float) -> tuple[Space, Problem]:
    from archsearch.cost import count
    from archsearch.cost.units import Budget

    nb201 = load_space("nb201")
    return nb201, Problem(
        nb201,
        parse_objectives("params:min"),
        lambda a: count(a).macs <= bound,
        budget=Budget(macs=int(bound)),
        violations=lambda a: {"macs": (count(a).macs - bound) / bound},
    )


def test_evolution_mutates_towards_the_bound_polishes_then_restarts() -> None:
    from archsearch.cost import count
    from archsearch.solvers import Result

    bound = 60e6
    gaps = {}
    for k in (1, 8):
        space, problem = _bounded_nb201(bound)
        s = create_strategy(
            "evolution", seed=0, population=10, candidates=k, init_candidates=k, restart_after=0
        )
        s.setup(problem)
        asked = []
        for _ in range(6):
            batch = s.ask(10)
            asked += batch
            s.tell([Result(a, {"params": 1.0}) for a in batch])
        gaps[k] = sum(bound - count(a).macs for a in asked) / len(asked)
    assert gaps[8] < 0.5 * gaps[1], gaps  # members and children use more of the budget

    # A run that never improves: after restart_after evaluations the best is polished (members
    # within two changes of it, closest to the bound first), then the population restarts.
    space, problem = _bounded_nb201(bound)

    def fresh() -> Any:
        s = create_strategy("evolution", seed=3, population=10, restart_after=20, polish=15)
        s.setup(problem)
        return s

    s = fresh()
    first = s.ask(10)
    s.tell([Result(a, {"params": 1.0}) for a in first])  # the first is the best, for good
    best = space.encode(first[0])
    for _ in range(2):
        s.tell([Result(a, {"params": 1.0}) for a in s.ask(10)])
    polished = s.ask(10)  # 20 evaluations without improvement
    for a in polished:
        changed = [k for k, v in space.encode(a).items() if best.get(k) != v]
        assert 1 <= len(changed) <= 2
        assert count(a).macs <= bound
    slack = [bound - count(a).macs for a in polished]
    assert slack == sorted(slack)
    restarted = False
    for _ in range(60):  # round after round until the neighbourhood is spent, then a restart
        old = {a.digest for _, a in s._aging}
        batch = s.ask(10)
        restarted = s._epoch_start > 0
        s.tell([Result(a, {"params": 1.0}) for a in batch])
        if restarted:
            break
    assert restarted and not old & {a.digest for _, a in s._aging}  # a new population
    # the state (polish round, stall count, restart point) round-trips exactly
    propose_alike(s, restored(s, fresh()), {"params": 1.0})


def restored(s: Any, b: Any) -> Any:
    """The fresh strategy ``b`` with ``s``'s state, through JSON."""
    import json

    b.load_state_dict(json.loads(json.dumps(s.state_dict(), allow_nan=False)))
    return b


def propose_alike(a: Any, b: Any, values: dict[str, float]) -> None:
    """``a`` and ``b`` propose the same three batches, each told ``values``."""
    from archsearch.solvers import Result

    for _ in range(3):
        x, y = a.ask(10), b.ask(10)
        assert [c.digest for c in x] == [c.digest for c in y]
        a.tell([Result(c, values) for c in x])
        b.tell([Result(c, values) for c in y])


def test_evolution_searches_next_to_the_front_when_it_stops_growing() -> None:
    """Several objectives: after front_after evaluations that add nothing to the non-dominated
    set of everything told, the next candidates are its unseen one-change neighbours, those of
    its bounding points first; the state (the set included) round-trips."""
    from archsearch.solvers import Result

    nb201 = load_space("nb201")
    problem = Problem(nb201, parse_objectives("params:min,macs:max"), lambda a: True)

    def fresh() -> Any:
        s = create_strategy("evolution", seed=5, population=10, front_after=10, polish=12)
        s.setup(problem)
        return s

    s = fresh()
    first = s.ask(10)
    # first[0] dominates everything told after it; first[1] is the other bounding point
    dull = {"params": 5.0, "macs": 0.0}
    ends = {
        first[0].digest: {"params": 1.0, "macs": 9.0},
        first[1].digest: {"params": 0.5, "macs": 1.0},
    }
    s.tell([Result(a, ends.get(a.digest, dull)) for a in first])
    assert [a.digest for _, a in s._archive] == [first[0].digest, first[1].digest]
    batch = s.ask(10)  # 8 evaluations added nothing: NSGA-II still
    s.tell([Result(a, dull) for a in batch])
    near = s.ask(10)  # 18 without growth: the neighbours of both ends
    codes = [nb201.encode(a) for a in first[:2]]
    for a in near:
        code = nb201.encode(a)
        assert min(sum(code[k] != e[k] for k in code) for e in codes) == 1
    assert len({a.digest for a in near}) == 10 and not {a.digest for a in near} & {
        a.digest for a in first + batch
    }
    b = restored(s, fresh())
    assert [a.digest for _, a in b._archive] == [a.digest for _, a in s._archive]
    propose_alike(s, b, dull)


def test_evolution_options_are_checked() -> None:
    for name, bad in (
        ("candidates", 0),
        ("init_candidates", 0),
        ("restart_after", -1),
        ("front_after", -1),
    ):
        with pytest.raises(UserError, match=f"evolution: {name}={bad} must be between"):
            create_strategy("evolution", **{name: bad})
    with pytest.raises(UserError, match="polish=10001 must be between 0 and 10000"):
        create_strategy("evolution", polish=10_001)
