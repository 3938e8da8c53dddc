"""Search strategies behind ask/tell, in the :data:`STRATEGIES` registry.

Built in: ``random``, ``evolution`` (regularized evolution for one objective, NSGA-II for
several) and ``deepmad`` (DeepMAD's mathematical program, solved with cvxpy). Plugins
register more through the entry-point group ``archsearch.strategies``.
"""

from __future__ import annotations

from typing import Any

from archsearch.registry import Registry
from archsearch.solvers.base import (
    Objective,
    Problem,
    Result,
    Strategy,
    always_feasible,
    parse_objectives,
)
from archsearch.solvers.deepmad import DeepMAD
from archsearch.solvers.evolution import Evolution
from archsearch.solvers.random_search import RandomSearch

STRATEGIES: Registry[type[Strategy]] = Registry(
    "strategy", entry_point_group="archsearch.strategies"
)
for _s in (RandomSearch, Evolution, DeepMAD):
    STRATEGIES.register(_s.name, _s)


def create_strategy(name: str, /, **options: Any) -> Strategy:
    """A new strategy ``name`` with ``options``; unknown names or options raise UserError."""
    strategy: Strategy = STRATEGIES.create(name, **options)
    return strategy


__all__ = [
    "STRATEGIES",
    "DeepMAD",
    "Evolution",
    "Objective",
    "Problem",
    "RandomSearch",
    "Result",
    "Strategy",
    "always_feasible",
    "create_strategy",
    "parse_objectives",
]
