"""Sampling strategies: deterministic under a seed, never an infeasible or duplicate
candidate, surviving NaN/inf scores and failures, short when exhausted, initial candidates
first.

Each check drives the strategy through its ask/tell interface on ``space`` with the problem's
``feasible`` test (default: under 800 MFLOPs) and DeepMAD's entropy as the score (cheap and
torch-free). A plugin's test::

    from archsearch.testing.strategies import check_strategy
    def test_my_strategy(): check_strategy("my_strategy", load_space("hybrid"))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from archsearch.cost import Budget, count
from archsearch.evaluators import Entropy
from archsearch.search import parse_objectives
from archsearch.solvers import Problem, Result, Strategy, create_strategy
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


def check_strategy(name: str, space: Space, **options: Any) -> None:
    """Every check of this module on strategy ``name`` over ``space`` (both objective sets;
    the init check with two sampled members)."""
    for objectives in OBJECTIVES:
        check_deterministic(name, space, objectives, **options)
        check_feasible_and_new(name, space, objectives)
        check_survives_bad_scores(name, space, objectives)
    check_exhaustion(name, space)
    check_init_first(name, space, [space.sample(seed=1), space.sample(seed=2)])
