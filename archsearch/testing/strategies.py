"""Sampling strategies: deterministic under a seed, never an infeasible or duplicate
candidate, surviving NaN/inf scores and failures, short when exhausted, initial candidates
first. Strategies that walk down to the budget (slimming, contraction): each network asked
once, deterministic, every step cheaper, ending within the budget (bad scores included), an
end when nothing fits, starting from ``init``.

Each check drives the strategy through its ask/tell interface on ``space`` with the problem's
``feasible`` test (default: under 800 MFLOPs) and DeepMAD's entropy as the score (cheap and
torch-free). A plugin's test::

    from archsearch.testing.strategies import check_strategy
    def test_my_strategy(): check_strategy("my_strategy", load_space("hybrid"))
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

from archsearch.cost import Budget, count
from archsearch.evaluators import Entropy
from archsearch.search import parse_objectives
from archsearch.solvers import Problem, Result, Strategy, create_strategy, strategy_class
from archsearch.spaces import Space
from archsearch.spec import Architecture

BUDGET = Budget(macs=800_000_000)
OBJECTIVES = ("entropy:max", "macs:min,entropy:max")
_EVAL = Entropy()


def within_budget(arch: Architecture) -> bool:
    """The default feasibility test: at most 800 MFLOPs."""
    return BUDGET.admits(count(arch))


def results_for(archs: Sequence[Architecture]) -> list[Result]:
    """Each candidate's exact costs and DeepMAD entropy, as a strategy is told them."""
    out = []
    for a, scores in zip(archs, _EVAL.evaluate(archs), strict=True):
        values = {**{k: float(v) for k, v in count(a).as_dict().items()}, **scores}
        out.append(Result(a, values))
    return out


def drive(
    name: str,
    space: Space,
    objectives: str,
    seed: int,
    *,
    feasible: Callable[[Architecture], bool] = within_budget,
    rounds: int = 6,
    n: int = 16,
    **options: Any,
) -> tuple[list[str], Strategy]:
    """Asks ``rounds`` batches of ``n`` and tells their results; the digests asked."""
    strategy = create_strategy(name, seed=seed, **options)
    strategy.setup(Problem(space, parse_objectives(objectives), feasible))
    asked: list[str] = []
    for _ in range(rounds):
        batch = strategy.ask(n)
        asked += [a.digest for a in batch]
        strategy.tell(results_for(batch))
    return asked, strategy


def check_deterministic(name: str, space: Space, objectives: str, **options: Any) -> None:
    """The same seed proposes the same candidates; another seed others."""
    a, _ = drive(name, space, objectives, seed=11, **options)
    b, _ = drive(name, space, objectives, seed=11, **options)
    c, _ = drive(name, space, objectives, seed=12, **options)
    assert a == b and a != c


def check_feasible_and_new(
    name: str,
    space: Space,
    objectives: str,
    *,
    feasible: Callable[[Architecture], bool] = within_budget,
) -> None:
    """Every candidate is feasible, a member of the space, and asked once."""
    strategy = create_strategy(name, seed=3)
    strategy.setup(Problem(space, parse_objectives(objectives), feasible))
    seen: set[str] = set()
    for _ in range(8):
        batch = strategy.ask(25)
        assert batch
        for arch in batch:
            assert arch.digest not in seen
            assert feasible(arch)
            assert space.contains(arch)
            seen.add(arch.digest)
        strategy.tell(results_for(batch))


def check_survives_bad_scores(
    name: str,
    space: Space,
    objectives: str,
    *,
    feasible: Callable[[Architecture], bool] = within_budget,
) -> None:
    """NaN, infinite scores and failed evaluations never stop the strategy."""
    strategy = create_strategy(name, seed=5)
    objs = parse_objectives(objectives)
    strategy.setup(Problem(space, objs, feasible))
    bad = [math.nan, math.inf, -math.inf]
    for round_ in range(6):
        batch = strategy.ask(20)
        assert batch, f"round {round_}: the strategy stopped after bad scores"
        results = []
        for i, arch in enumerate(batch):
            if i % 4 == 3:
                results.append(Result(arch, {}, "failed"))
            else:
                results.append(Result(arch, {o.name: bad[(i + round_) % 3] for o in objs}))
        strategy.tell(results)


def check_exhaustion(name: str, space: Space) -> None:
    """With nothing feasible, ``ask`` comes back empty (after ``max_tries``)."""
    strategy = create_strategy(name, seed=0, max_tries=50)
    strategy.setup(Problem(space, parse_objectives("entropy:max"), lambda a: False))
    assert strategy.ask(5) == []


def check_init_first(name: str, space: Space, seeds: Sequence[Architecture]) -> None:
    """Initial candidates (two members of ``space``, one repeated) are asked first, once
    each, and the configuration recreates the strategy."""
    assert len(seeds) == 2
    init = [seeds[0], seeds[1].to_json(), seeds[0]]
    strategy = create_strategy(name, seed=0, init=init)
    strategy.setup(Problem(space, parse_objectives("entropy:max"), lambda a: True))
    first = strategy.ask(1) + strategy.ask(5)
    assert [a.digest for a in first[:2]] == [s.digest for s in seeds]
    assert len({a.digest for a in first}) == 6  # the repeated seed is asked once
    assert strategy.config()["init"] == [
        seeds[0].to_json(),
        seeds[1].to_json(),
        seeds[0].to_json(),
    ]
    again = create_strategy(name, **strategy.config())
    again.setup(Problem(space, parse_objectives("entropy:max"), lambda a: True))
    assert [a.digest for a in again.ask(6)] == [a.digest for a in first]


# -- strategies that walk down to the budget (slimming, contraction) -----------------------


def walk(
    name: str,
    space: Space,
    objectives: str,
    *,
    seed: int = 0,
    feasible: Callable[[Architecture], bool] = within_budget,
    bad_scores: bool = False,
    n: int = 16,
    max_asked: int = 20_000,
    **options: Any,
) -> tuple[list[str], Strategy]:
    """Drives a walking strategy to its end (``ask`` empty) under :data:`BUDGET`; the digests
    asked. With ``bad_scores``, every third result is NaN and every fourth failed."""
    strategy = create_strategy(name, seed=seed, **options)
    objs = parse_objectives(objectives)
    strategy.setup(Problem(space, objs, feasible, budget=BUDGET))
    asked: list[str] = []
    while True:
        batch = strategy.ask(n)
        if not batch:
            return asked, strategy
        asked += [a.digest for a in batch]
        assert len(asked) <= max_asked, f"{name}: no end after {max_asked} networks"
        results = results_for(batch)
        if bad_scores:
            results = [
                Result(r.arch, {}, "failed")
                if i % 4 == 3
                else Result(r.arch, {**r.values, **{o.name: math.nan for o in objs}})
                if i % 3 == 2
                else r
                for i, r in enumerate(results)
            ]
        strategy.tell(results)


def check_walk(name: str, space: Space, objectives: str, **options: Any) -> None:
    """A walk asks each network once, every one a member of the space; the same seed walks
    the same way; each step of its path costs less than the one before; it ends on a network
    within the budget, also when scores are NaN or evaluations fail."""
    asked, strategy = walk(name, space, objectives, **options)
    again, _ = walk(name, space, objectives, **options)
    assert asked == again
    assert len(set(asked)) == len(asked)
    path: list[Architecture] = strategy.path  # type: ignore[attr-defined]
    assert path and path[0].digest == asked[0]
    assert {a.digest for a in path} <= set(asked)
    costs = [count(a).macs for a in path]
    assert all(b < a for a, b in itertools.pairwise(costs)), costs
    assert within_budget(path[-1])
    assert not within_budget(path[0]) or len(path) == 1
    for a in path:
        assert space.contains(a)
    _, bad = walk(name, space, objectives, bad_scores=True, **options)
    assert within_budget(bad.path[-1])  # type: ignore[attr-defined]


def check_walk_ends(name: str, space: Space) -> None:
    """With a budget nothing meets, the walk ends (``ask`` empty) at the smallest network its
    moves reach, instead of running forever."""
    asked, strategy = walk(name, space, "entropy:max", feasible=lambda a: False)
    assert asked and strategy.ask(5) == []


def check_walk_starts_from_init(name: str, space: Space, start: Architecture) -> None:
    """The walk starts from the first ``init`` network, and its configuration recreates it."""
    asked, strategy = walk(name, space, "entropy:max", init=[start.to_json()])
    assert asked[0] == start.digest
    again = create_strategy(name, **strategy.config())
    again.setup(Problem(space, parse_objectives("entropy:max"), within_budget, budget=BUDGET))
    assert again.ask(1)[0].digest == start.digest


def check_strategy(name: str, space: Space, **options: Any) -> None:
    """Every check of this module on strategy ``name`` over ``space`` (both objective sets;
    the init check with two sampled members). Strategies that walk down to the budget
    (``walks``) get the walk's checks instead of the sampling ones."""
    if strategy_class(name).walks:
        for objectives in OBJECTIVES:
            check_walk(name, space, objectives, **options)
        check_walk_ends(name, space)
        check_walk_starts_from_init(name, space, space.largest())
        return
    for objectives in OBJECTIVES:
        check_deterministic(name, space, objectives, **options)
        check_feasible_and_new(name, space, objectives)
        check_survives_bad_scores(name, space, objectives)
    check_exhaustion(name, space)
    check_init_first(name, space, [space.sample(seed=1), space.sample(seed=2)])
