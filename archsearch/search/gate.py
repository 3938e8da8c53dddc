"""The gate: the cheap feasibility test (budget, then constraints) every candidate passes
before it is evaluated."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from archsearch.blocks import Cost
from archsearch.cost import Budget, count
from archsearch.evaluators import (
    Evaluator,
)
from archsearch.expr import Expr
from archsearch.spec import Architecture

MAX_SCORED_UNTIL_FEASIBLE = 100
"""Candidates scored for a constraint (``--constraint "naswot > 900"``) before the first one
that passes; beyond, the constraint counts as out of reach and the run is refused (see
:class:`Gate`). Costs alone are checked on thousands of proposals in milliseconds."""


class Hopeless(Exception):
    """Raised by :class:`Gate` when no scored candidate has met the constraints in
    :data:`MAX_SCORED_UNTIL_FEASIBLE` tries."""


class Gate:
    """The cheap feasibility test every candidate passes before evaluation.

    It checks the budget on the exact cost, then the constraints (expressions over cost
    metrics and the metrics of cheap evaluators). It remembers the cheapest candidate it
    rejected for the budget and the lowest value of each constrained metric among the
    candidates it rejected for a constraint, to explain a budget no member can meet.
    """

    def __init__(
        self,
        budget: Budget,
        constraints: Sequence[Expr] = (),
        evaluators: Sequence[Evaluator] = (),
    ) -> None:
        self.budget = budget
        self.constraints = tuple(constraints)
        needed = {n for c in self.constraints for n in c.names}
        self._evaluators = [e for e in evaluators if {m.name for m in e.metrics} & needed]
        self.cheapest: Cost | None = None
        self.lowest: dict[str, float] = {}
        self.checked = 0
        self.scored = 0
        """Candidates checked with a score (the costly checks)."""
        self.passed = 0
        self.give_up = True
        """False where every candidate must be checked (a benchmark's ground truth)."""
        self.on_check: Callable[[int, int], None] | None = None
        """Called with ``(scored, passed)`` after each check that computed a score: a
        progress display while a run looks for candidates that meet a constraint on one."""

    def __call__(self, arch: Architecture) -> bool:
        """Whether ``arch`` meets the budget and the constraints.

        Raises:
            Hopeless: :data:`MAX_SCORED_UNTIL_FEASIBLE` candidates were scored for a
                constraint and none has passed yet: the constraint is out of reach (a bound
                nothing meets), and checking the space's thousands of proposals with a score
                would take minutes to say so.
        """
        scored = self.scored
        ok = self._check(arch)
        self.passed += ok
        if self.on_check is not None and self.scored > scored:
            self.on_check(self.scored, self.passed)
        if self.give_up and not self.passed and self.scored >= MAX_SCORED_UNTIL_FEASIBLE:
            raise Hopeless
        return ok

    def _check(self, arch: Architecture) -> bool:
        self.checked += 1
        cost = count(arch)
        if not self.budget.admits(cost):
            if self.cheapest is None or (cost.macs, cost.params) < (
                self.cheapest.macs,
                self.cheapest.params,
            ):
                self.cheapest = cost
            return False
        if not self.constraints:
            return True
        values: dict[str, float] = {k: float(v) for k, v in cost.as_dict().items()}
        self.scored += bool(self._evaluators)
        for ev in self._evaluators:
            values.update(ev.evaluate([arch])[0])
        if all(c.evaluate(values) for c in self.constraints):
            return True
        for name in {n for c in self.constraints for n in c.names}:
            v = values[name]
            if v == v and v < self.lowest.get(name, math.inf):  # not NaN
                self.lowest[name] = v
        return False

    def violations(self, arch: Architecture) -> dict[str, float]:
        """How far ``arch`` is from feasible, per bound: ``<= 0`` where it holds.

        Keys are the same for every architecture: ``macs`` and ``params`` for the budget's
        bounds, then each constraint's text. A bound ``metric <= b`` reports the relative
        excess ``(value - b) / |b|``; other expressions (and NaN values) report 1 when broken
        and 0 when they hold. Read by strategies whose samplers model constraints (Optuna's).
        """
        cost = count(arch)
        out: dict[str, float] = {}
        for name, bound in (("macs", self.budget.macs), ("params", self.budget.params)):
            if bound is not None:
                out[name] = _excess(float(getattr(cost, name)), float(bound))
        if not self.constraints:
            return out
        values: dict[str, float] = {k: float(v) for k, v in cost.as_dict().items()}
        for ev in self._evaluators:
            values.update(ev.evaluate([arch])[0])
        for c in self.constraints:
            bounds = c.upper_bounds()
            if bounds:
                out[c.text] = max(_excess(values[n], b) for n, b in bounds.items())
            else:
                out[c.text] = 0.0 if c.evaluate(values) else 1.0
        return out


def _excess(value: float, bound: float) -> float:
    if not math.isfinite(value):
        return 1.0
    return (value - bound) / max(abs(bound), 1e-12)
