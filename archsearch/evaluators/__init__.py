"""Evaluators: scores for architectures, in the :data:`EVALUATORS` registry.

Built in: ``entropy`` (DeepMAD), the zero-cost proxies ``naswot``, ``synflow``, ``grad_norm``,
``snip``, ``jacob_cov`` and ``zen`` (:mod:`~archsearch.evaluators.proxies`), ``train`` (short
training on real data, :mod:`~archsearch.evaluators.training`), ``latency@<device>``
(look-up-table predictions, one per registered device) and ``table`` (columns of a user's
CSV, :mod:`~archsearch.evaluators.table`). ``supernet`` (inherited weights of a trained
supernet) lives in :mod:`archsearch.supernet.score` and joins through the entry-point group
``archsearch.evaluators``, as plugins do. The cost metrics ``params``, ``macs`` and
``activations`` are always available.
"""

from __future__ import annotations

from archsearch.cost.devices import DEVICES
from archsearch.errors import UnknownNameError
from archsearch.evaluators.base import COST_METRICS, Direction, Evaluator, Metric
from archsearch.evaluators.entropy import Entropy, EntropyStats, deepmad_entropy
from archsearch.evaluators.latency import Latency, latency_evaluator
from archsearch.evaluators.proxies import PROXIES, Proxy
from archsearch.evaluators.table import Table, guess_direction, load_table
from archsearch.evaluators.training import Train
from archsearch.registry import Registry

EVALUATORS: Registry[type[Evaluator]] = Registry(
    "evaluator", entry_point_group="archsearch.evaluators"
)
# Every score defined in this package's modules, under its name (a new one: a new module).
EVALUATORS.discover(__name__, Evaluator)
# `latency@<device>` for every device of the device registry (plugins' devices included).
EVALUATORS.add_source(lambda: {f"latency@{d}": latency_evaluator(d) for d in DEVICES.names()})


def known_metrics() -> dict[str, Metric]:
    """Every metric a run can optimise or filter on: cost metrics and evaluators' metrics."""
    metrics = {m.name: m for m in COST_METRICS}
    for name in EVALUATORS.names():
        metrics.update({m.name: m for m in EVALUATORS.get(name).metrics})
    return metrics


def primary_metric(score: str) -> Metric:
    """The metric a search optimises when ``score`` (an evaluator or cost metric) is asked for:
    the cost metric itself, or the evaluator's first metric (``train`` -> ``accuracy``).

    Raises:
        UnknownNameError: ``score`` is neither.
    """
    cost = next((m for m in COST_METRICS if m.name == score), None)
    return cost if cost is not None else EVALUATORS.get(score).metrics[0]


def evaluator_for(metric: str) -> str | None:
    """The evaluator that computes ``metric``, or None for a cost metric.

    Raises:
        UnknownNameError: no evaluator computes ``metric``.
    """
    if any(m.name == metric for m in COST_METRICS):
        return None
    for name in EVALUATORS.names():
        if any(m.name == metric for m in EVALUATORS.get(name).metrics):
            return name
    raise UnknownNameError("metric", metric, known_metrics())


__all__ = [
    "COST_METRICS",
    "EVALUATORS",
    "PROXIES",
    "Direction",
    "Entropy",
    "EntropyStats",
    "Evaluator",
    "Latency",
    "Metric",
    "Proxy",
    "Table",
    "Train",
    "deepmad_entropy",
    "evaluator_for",
    "guess_direction",
    "known_metrics",
    "load_table",
    "primary_metric",
]
