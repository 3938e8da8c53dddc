"""EfficientFormer's latency-driven slimming (Li et al., NeurIPS 2022) and EfficientFormerV2's
fine-grained search (Li et al., ICCV 2023), as a walk down from the largest member.

EfficientFormer trains a MetaPath supernet (per position a 4D block, a 3D block or the
identity) with Gumbel-softmax architecture parameters, then slims it gradually: at each step
it considers setting the least important position to identity, turning the first 3D block
into a 4D one, and shrinking the least important stage's width, and takes the action that
loses the least accuracy per millisecond saved, until the latency target holds. Neither
paper released its search code.

By default archsearch evaluates every candidate action of a step with the run's score
(inherited supernet accuracy, a proxy or training) instead of ranking positions by
architecture parameters first: the same criterion applied to every position, each evaluated
network a trial. Given ``importance`` (the type probabilities a supernet trained with
``--alphas`` learned), a step takes the paper's three actions only. The latency comes from the
run's ``latency@<device>`` table (or a ``--table`` column).

``variant: v2`` (``--strategy slimming:v2``): EfficientFormerV2's actions (drop a block,
shrink a stage's width, shrink one block's expansion ratio), judged by the loss per gain in
the Mobile Efficiency Score ``MES = score * prod_i (M_i / U_i)^(-alpha_i)`` over latency and
parameters: a move's gain is the fall of ``sum_i alpha_i * ln M_i``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from archsearch.errors import UserError
from archsearch.solvers.base import Problem, Result
from archsearch.solvers.shrinking import Move, Moves, PathSearch, check_steps
from archsearch.spec import Architecture

VARIANTS = ("v1", "v2")


class Slimming(PathSearch):
    """Latency-driven slimming (EfficientFormer) from the largest member down to the target.

    Args:
        variant: ``v1`` (identity, 3D -> 4D, stage width) or ``v2`` (drop a block, stage
            width, one block's expansion; judged by the Mobile Efficiency Score).
        width_step: Width choices a width action goes down.
        ratio_step: Ratio choices an expansion action goes down (v2).
        latency_weight: alpha of the latency in the Mobile Efficiency Score (v2).
        params_weight: alpha of the parameters in the Mobile Efficiency Score (v2).
        importance: Per block position's type label, the learned probability of each type
            (``softmax(alpha)`` of a supernet trained with ``--alphas``; the CLI reads it
            from ``-O importance=<checkpoint or supernet id>``). Given it, a v1 step considers
            EfficientFormer's three actions only: the least important position (the lowest
            probability of its current type) set to identity, the first 3D block turned 4D,
            the least important stage (the lowest mean over its blocks) narrowed.
    """

    name = "slimming"
    variant_option: ClassVar[str | None] = "variant"

    def __init__(
        self,
        *,
        seed: int = 0,
        max_tries: int = 2000,
        init: Sequence[Architecture | str] = (),
        objective: str | None = None,
        cost: str | None = None,
        criterion: str | None = None,
        lazy: int = 0,
        variant: str = "v1",
        width_step: int = 1,
        ratio_step: int = 1,
        latency_weight: float = 0.5,
        params_weight: float = 0.5,
        importance: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        super().__init__(
            seed=seed,
            max_tries=max_tries,
            init=init,
            objective=objective,
            cost=cost,
            criterion=criterion,
            lazy=lazy,
        )
        if variant not in VARIANTS:
            raise UserError(f"option variant: {variant!r} must be one of {', '.join(VARIANTS)}")
        check_steps({"width_step": width_step, "ratio_step": ratio_step})
        for opt, w in (("latency_weight", latency_weight), ("params_weight", params_weight)):
            if not (math.isfinite(w) and w >= 0):
                raise UserError(f"option {opt}: {w} must be 0 or more")
        self.variant = variant
        self.width_step = width_step
        self.ratio_step = ratio_step
        self.latency_weight = latency_weight
        self.params_weight = params_weight
        self.importance = (
            {k: {t: float(p) for t, p in v.items()} for k, v in importance.items()}
            if importance
            else None
        )

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "variant": self.variant,
            "width_step": self.width_step,
            "ratio_step": self.ratio_step,
            "latency_weight": self.latency_weight,
            "params_weight": self.params_weight,
            "importance": self.importance,
        }

    def setup(self, problem: Problem) -> None:
        super().setup(problem)
        if self.variant == "v2" and self.latency_weight + self.params_weight <= 0:
            raise UserError("option latency_weight/params_weight: give one a positive weight")

    def moves(self, moves: Moves, a: Mapping[str, Any]) -> list[Move]:
        if self.variant == "v1" and self.importance:
            return self._important_moves(moves, a)
        if self.variant == "v1":
            return moves.drop(a) + moves.to_conv(a) + moves.width(a, self.width_step)
        return (
            moves.drop(a)
            + moves.width(a, self.width_step)
            + moves.block_moves(a, "ratio", self.ratio_step)
        )

    def _weight(self, a: Mapping[str, Any], prefix: str) -> float:
        """The learned probability of the type at block ``prefix`` (1 where not learned)."""
        assert self.importance is not None
        probs = self.importance.get(f"{prefix}.type")
        return 1.0 if probs is None else probs.get(a[f"{prefix}.type"], 0.0)

    def _important_moves(self, moves: Moves, a: Mapping[str, Any]) -> list[Move]:
        out = []
        drops = [m for m in moves.drop(a)]
        if drops:
            out.append(min(drops, key=lambda m: (self._weight(a, m.where), m.where)))
        out += moves.to_conv(a)
        widths = moves.width(a, self.width_step)
        if widths:

            def stage_weight(m: Move) -> tuple[float, str]:
                so = moves.stages[m.where]
                ws = [self._weight(a, so.prefix(j)) for j in range(a[f"{m.where}.depth"])]
                return (sum(ws) / max(1, len(ws)), m.where)

            out.append(min(widths, key=stage_weight))
        return out

    def _value(self, r: Result, name: str) -> float:
        if self.variant == "v2" and name == self._cost:
            # the fall of sum_i alpha_i ln M_i is the gain in the Mobile Efficiency Score
            lat = super()._value(r, self._cost)
            params = super()._value(r, "params")
            if not (lat > 0 and params > 0):
                return math.nan
            return self.latency_weight * math.log(lat) + self.params_weight * math.log(params)
        return super()._value(r, name)
