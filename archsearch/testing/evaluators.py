"""Scores: one result per architecture with the declared metrics, deterministic, recreated
from its configuration; registered under its name with documented metrics.

A plugin's test::

    from archsearch.testing.evaluators import check_evaluator
    def test_my_score(): check_evaluator(MyScore(), [load_space("hybrid").sample(seed=0)])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from archsearch.evaluators import EVALUATORS, Evaluator
from archsearch.spec import Architecture


def check_declared(evaluator: Evaluator) -> None:
    """A name, at least one metric with a direction and a doc line, options it names."""
    assert evaluator.name and evaluator.metrics
    for m in evaluator.metrics:
        assert m.direction in ("min", "max"), m
        assert m.doc, f"{evaluator.name}: metric {m.name} needs a doc line"
    assert set(evaluator.config()) <= set(type(evaluator).option_names()) | {"metric"}


def check_results(evaluator: Evaluator, archs: Sequence[Architecture]) -> None:
    """One dict per architecture, keyed by the declared metrics, float values; the same
    again (deterministic; metrics named ``*seconds`` measure time and are left out); the
    configuration recreates an evaluator that scores the same."""
    names = {m.name for m in evaluator.metrics}
    first = evaluator.evaluate(archs)
    assert len(first) == len(archs)
    for row in first:
        assert set(row) <= names, (set(row), names)
        assert all(isinstance(v, float | int) for v in row.values())
    second = evaluator.evaluate(archs)
    assert _stable(first) == _stable(second), "not deterministic"
    again = EVALUATORS.create(evaluator.name, **evaluator.config())
    assert _stable(first) == _stable(again.evaluate(archs)), "config() does not recreate it"


def _stable(rows: list[dict[str, float]]) -> list[dict[str, object]]:
    return [
        {k: "nan" if math.isnan(v) else v for k, v in r.items() if not k.endswith("seconds")}
        for r in rows
    ]


def check_evaluator(evaluator: Evaluator, archs: Sequence[Architecture]) -> None:
    """Every check of this module."""
    check_declared(evaluator)
    check_results(evaluator, archs)
