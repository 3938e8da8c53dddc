"""Search strategies behind ask/tell, in the :data:`STRATEGIES` registry.

Built in: ``random``, ``evolution`` (regularized evolution for one objective, NSGA-II for
several), ``deepmad`` (DeepMAD's mathematical program, solved with cvxpy) and ``optuna``
(Optuna's samplers, named ``optuna:tpe``, ``optuna:nsga2``, ...) and ``supernet``
(ViT-ResNAS's evolution on a supernet's inherited-weight accuracy). A name ``base:variant`` sets
the option the strategy class names in ``variant_option``. Plugins register more through the
entry-point group ``archsearch.strategies``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from archsearch.errors import UserError
from archsearch.registry import Registry
from archsearch.solvers.base import (
    Objective,
    Problem,
    Result,
    Strategy,
    always_feasible,
)

if TYPE_CHECKING:
    from archsearch.solvers.deepmad import DeepMAD
    from archsearch.solvers.evolution import Evolution
    from archsearch.solvers.optuna_search import OptunaSearch
    from archsearch.solvers.random_search import RandomSearch
    from archsearch.solvers.supernet_evolution import SupernetEvolution

STRATEGIES: Registry[type[Strategy]] = Registry(
    "strategy", entry_point_group="archsearch.strategies"
)
# Every strategy defined in this package's modules, under its name (a new one: a new module),
# each imported when first used: numpy and cvxpy stay out of `archsearch --help`.
STRATEGIES.discover(__name__, Strategy)

# The built-in classes, importable from here (each module imported on first access).
_CLASSES = {
    "DeepMAD": "deepmad",
    "Evolution": "evolution",
    "OptunaSearch": "optuna_search",
    "RandomSearch": "random_search",
    "SupernetEvolution": "supernet_evolution",
}


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return getattr(importlib.import_module(f"{__name__}.{_CLASSES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def strategy_class(name: str) -> type[Strategy]:
    """The class of strategy ``name`` (``optuna:tpe`` -> the ``optuna`` strategy)."""
    return STRATEGIES.get(name.partition(":")[0])


def create_strategy(name: str, /, **options: Any) -> Strategy:
    """A new strategy ``name`` with ``options``; unknown names or options raise UserError.

    ``base:variant`` (``optuna:tpe``) creates ``base`` with its variant option set.
    """
    base, sep, variant = name.partition(":")
    if sep:
        cls = STRATEGIES.get(base)
        option = cls.variant_option
        if option is None or not variant:
            raise UserError(
                f"--strategy {name}: strategy {base!r} takes no ':variant' suffix; write "
                f"--strategy {base}"
            )
        options = {**options, option: variant}
    strategy: Strategy = STRATEGIES.create(base, **options)
    return strategy


__all__ = [
    "STRATEGIES",
    "DeepMAD",
    "Evolution",
    "Objective",
    "OptunaSearch",
    "Problem",
    "RandomSearch",
    "Result",
    "Strategy",
    "SupernetEvolution",
    "always_feasible",
    "create_strategy",
    "strategy_class",
]
