"""Budgets, units and exact analytic counting (torch-free).

FLOP convention: one multiply-accumulate counts as one FLOP, as the seed papers report
(ConvNeXt-T = 4.5 GFLOPs).
"""

from archsearch.blocks import Cost
from archsearch.cost.counting import block_cost, count, count_layers
from archsearch.cost.metrics import COST_METRICS, Direction, Metric
from archsearch.cost.units import (
    BUDGET_EXAMPLES,
    FLOP_CONVENTION,
    Budget,
    format_si,
    parse_budget,
)

__all__ = [
    "BUDGET_EXAMPLES",
    "COST_METRICS",
    "FLOP_CONVENTION",
    "Budget",
    "Cost",
    "Direction",
    "Metric",
    "block_cost",
    "count",
    "count_layers",
    "format_si",
    "parse_budget",
]
