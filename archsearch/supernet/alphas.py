"""Architecture parameters learned with the weights: EfficientFormer's importance of each
block position's choices, by Gumbel-softmax relaxation (Jang et al.; Maddison et al., ICLR
2017).

Every block position whose type is a choice (``s3.b2.type``: pool, effformer_attn or identity)
gets a vector of logits ``alpha``, one per type, zero at first. While the supernet trains with
``alphas`` on, each sampled member takes at each such position the type drawn from
``softmax((alpha + g) / tau)`` with Gumbel noise ``g`` (the other choices are drawn uniformly,
as without alphas), and the block's output is multiplied by the straight-through gate
``y[k] - stop_gradient(y[k]) + 1``: exactly 1 in the forward pass, so the member computes what
it computes without alphas, while the loss's gradient reaches ``alpha`` through the relaxed
sample ``y``. The temperature falls exponentially from ``tau_start`` (5: nearly uniform draws,
every type trained) to ``tau_end`` (0.5: draws follow the learned preference) over the
training's steps: ``tau(t) = tau_start * (tau_end / tau_start) ** (t / total)``. The logits
are stored in the checkpoint (``alphas/<label>`` tensors) and read by slimming
(``-O importance=<checkpoint>``) to rank positions: a position whose identity is likely (or
whose kept type is unlikely) is the least important.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from archsearch.errors import NotInSpaceError, UserError
from archsearch.spaces import Space
from archsearch.spec import Architecture

TRIES = 10
"""Draws of the other choices before a relaxed sample gives up (a constraint no draw meets)."""


def temperature(step: int, total: int, start: float, end: float) -> float:
    """The Gumbel-softmax temperature at optimiser step ``step`` of ``total``."""
    return float(start * (end / start) ** (step / max(1, total)))


@dataclass
class Alphas:
    """The logits of every block position whose type is a choice, in the space's order."""

    space: Space
    logits: dict[str, torch.Tensor] = field(default_factory=dict)
    types: dict[str, tuple[str, ...]] = field(default_factory=dict)
    where: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Each label's (stage index, block position)."""

    @classmethod
    def for_space(cls, space: Space) -> Alphas:
        out = cls(space)
        labels = space.labels()
        for i, so in enumerate(space.stages):
            for j in range(max(so.depths)):
                label = f"{so.prefix(j)}.type"
                types = tuple(labels[label])
                if len(types) > 1 and label not in out.logits:
                    out.logits[label] = torch.zeros(len(types), requires_grad=True)
                    out.types[label] = types
                    out.where[label] = (i, j)
        return out

    def parameters(self) -> list[torch.Tensor]:
        return list(self.logits.values())

    def state(self) -> dict[str, torch.Tensor]:
        return {label: t.detach().clone() for label, t in self.logits.items()}

    def load(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restores :meth:`state`'s logits (refusing another space's)."""
        if set(state) != set(self.logits):
            raise UserError(
                "supernet checkpoint: its architecture parameters are another space's; retrain"
            )
        with torch.no_grad():
            for label, t in state.items():
                self.logits[label].copy_(t)

    def probabilities(self) -> dict[str, dict[str, float]]:
        """softmax(alpha) per label: the learned preference among the position's types."""
        return {
            label: dict(zip(self.types[label], torch.softmax(t.detach(), 0).tolist(), strict=True))
            for label, t in self.logits.items()
        }

    def sample(
        self, rng: random.Random, g: torch.Generator, tau: float
    ) -> tuple[Architecture, dict[str, torch.Tensor]] | None:
        """A member whose gated types are Gumbel-softmax draws, and the straight-through gate
        of each active gated block by its module path (``stages.<i>.<k>``); None when no draw
        of the other choices makes a member."""
        space = self.space
        draws: dict[str, tuple[str, torch.Tensor]] = {}
        for label, logits in self.logits.items():
            u = torch.rand(len(logits), generator=g).clamp_(1e-10, 1 - 1e-10)
            y = torch.softmax((logits - torch.log(-torch.log(u))) / tau, 0)
            k = int(torch.argmax(y))
            draws[label] = (self.types[label][k], y[k] - y[k].detach() + 1.0)
        labels = space.labels()
        for _ in range(TRIES):
            a = dict(space.encode(space.sample(rng)))
            for label, values in labels.items():
                a.setdefault(label, values[-1])
            for label, (t, _gate) in draws.items():
                a[label] = t
            try:
                arch = space.decode(a)
            except (NotInSpaceError, UserError):
                continue
            gates = {}
            for label, (_t, gate) in draws.items():
                i, j = self.where[label]
                stage = arch.stages[i]
                if j < stage.depth:
                    k = j + (stage.downsample is not None)
                    gates[f"stages.{i}.{k}"] = gate
            return arch, gates
        return None


def entropy(probabilities: Mapping[str, Mapping[str, float]]) -> float:
    """Mean entropy (nats) of the positions' preferences: ln(types) when uniform, 0 when
    decided."""
    if not probabilities:
        return 0.0
    return sum(
        -sum(p * math.log(p) for p in probs.values() if p > 0) for probs in probabilities.values()
    ) / len(probabilities)
