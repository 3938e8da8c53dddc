"""TinyViT's progressive model contraction (Wu et al., ECCV 2022) as a constrained local
search down from a large network.

TinyViT contracts a large model by contraction factors per stage (embedding width, depth,
window size, MLP ratio, heads) until it meets the target size, evaluating the candidates
and keeping the best; it released its models, not this search. archsearch starts from
``init`` (default: the space's largest member), proposes at every step the one-factor
contractions of the current network (one stage's width, depth, window, expansion/MLP ratio,
heads or head dimension, a few choices down), evaluates them with the run's score, moves to
the best-scoring one that lowers the cost, and stops when the run's budget and constraints
(parameters, ``latency@<device>``, a table's latency column) hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from archsearch.solvers.shrinking import FACTORS, Move, Moves, PathSearch, check_steps
from archsearch.spec import Architecture

STEP_OPTIONS = ("width_step", "depth_step", "ratio_step", "window_step", "heads_step")


class Contraction(PathSearch):
    """Progressive contraction (TinyViT): one-factor contractions of each stage per step.

    Args:
        width_step: Width choices one contraction goes down.
        depth_step: Depth choices one contraction goes down.
        ratio_step: Expansion/MLP-ratio choices one contraction goes down.
        window_step: Window-size choices one contraction goes down.
        heads_step: Heads (and head-dimension) choices one contraction goes down.
    """

    name = "contraction"
    default_criterion = "score"

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
        width_step: int = 1,
        depth_step: int = 1,
        ratio_step: int = 1,
        window_step: int = 1,
        heads_step: int = 1,
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
        self.steps = dict(
            zip(
                STEP_OPTIONS,
                (width_step, depth_step, ratio_step, window_step, heads_step),
                strict=True,
            )
        )
        check_steps(self.steps)

    def config(self) -> dict[str, Any]:
        return {**super().config(), **self.steps}

    def moves(self, moves: Moves, a: Mapping[str, Any]) -> list[Move]:
        out = moves.width(a, self.steps["width_step"]) + moves.depth(a, self.steps["depth_step"])
        for factor in FACTORS:
            step = self.steps["heads_step" if factor == "head_dim" else f"{factor}_step"]
            out += moves.stage_moves(a, factor, step)
        return out
