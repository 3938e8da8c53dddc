"""Metrics: a named quantity and whether smaller or larger is better.

The vocabulary every layer shares (the store's columns, the evaluators' scores, the
strategies' objectives), so it sits at the bottom with the costs it starts from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["min", "max"]


@dataclass(frozen=True)
class Metric:
    """A named score and whether smaller or larger is better."""

    name: str
    direction: Direction
    doc: str = ""


COST_METRICS: tuple[Metric, ...] = (
    Metric("params", "min", "trainable parameters (exact, analytic)"),
    Metric("macs", "min", "multiply-accumulates per image; 1 MAC = 1 FLOP (exact, analytic)"),
    Metric("activations", "min", "elements output by convs/linears/matmuls (exact, analytic)"),
)
"""Always available: computed by :func:`archsearch.count` and stored with each architecture."""

DEFAULT_SCORE = "naswot"
"""The score a search optimises when neither objectives nor scores are given: the cheap score
that ranked architectures best by trained accuracy in ``benchmarks/proxy_ranking.py`` (see the
README's Scores section), ahead of DeepMAD's entropy."""
DEFAULT_OBJECTIVE = f"{DEFAULT_SCORE}:max"
