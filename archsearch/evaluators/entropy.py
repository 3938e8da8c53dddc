"""DeepMAD's expressiveness score: multi-scale entropy and the effectiveness ratio rho.

Shen et al., "DeepMAD: Mathematical Architecture Design for Deep Convolutional Neural
Network", CVPR 2023 (official code: alibaba/lightweight-neural-architecture-search).

For conv layers, exactly as published and as the official code applies it:

* each layer on a block's main path contributes ``0.5 * log(c_in * k^2 / groups)`` (its
  *fan-in*, given by :meth:`~archsearch.blocks.BlockFamily.fan_ins`); residual links,
  squeeze-excite, normalisation and the final classifier contribute nothing;
* stages end just before every block, other than the stem, that reduces the spatial size, and
  at the last block (the head's 1x1 conv, when it has one, belongs to the last stage);
* ``E_s`` is the cumulative sum of those terms from the input to the end of stage ``s``, and
  ``H_s = (log C_s + log(H_s * W_s)) * E_s`` with ``C_s`` channels and ``H_s x W_s`` the map at
  the end of stage ``s``; the score is ``sum_s alpha_s * H_s`` with ``alpha = 1, ..., 1, 8``
  (DeepMAD's ``1,1,1,1,8`` for five stages: weight 8 on the last stage, 1 elsewhere);
* ``rho_s = L_s / exp(mean log fan-in)`` over the ``L_s`` layers up to the end of stage ``s``
  (depth over geometric-mean width) and ``rho = max_s rho_s``.

Design choice for the blocks DeepMAD does not cover (documented, tested, not from the paper):
an attention layer counts as one layer whose fan-in is the number of keys it attends over
(``H*W``, or ``(H/sr)*(W/sr)`` with spatial reduction), like a depthwise conv whose window
covers the map; its q/k/v/output projections and MLP layers count as linear (1x1) layers. A
pooling token mixer counts as a depthwise ``pool_size x pool_size`` layer. PVT's reduction conv,
like squeeze-excite, feeds a side path and is not counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from archsearch.errors import SpecError, UserError
from archsearch.evaluators.base import Evaluator, Metric
from archsearch.spec import Architecture


@dataclass(frozen=True)
class EntropyStats:
    """Per-stage entropies ``H_s``, effectiveness ``rho_s``, and the weighted score."""

    stage_entropy: tuple[float, ...]
    stage_rho: tuple[float, ...]
    score: float

    @property
    def rho(self) -> float:
        return max(self.stage_rho)


def stage_alphas(n_stages: int, alpha: Sequence[float] | None = None) -> tuple[float, ...]:
    """DeepMAD's stage weights: ``alpha`` if given, else 1 per stage and 8 for the last."""
    if alpha is not None:
        if len(alpha) != n_stages:
            raise UserError(
                f"entropy: alpha has {len(alpha)} weights but the network has {n_stages} stages; "
                f"give {n_stages} weights"
            )
        return tuple(alpha)
    return (1.0,) * (n_stages - 1) + (8.0,)


def deepmad_entropy(arch: Architecture, alpha: Sequence[float] | None = None) -> EntropyStats:
    """Computes DeepMAD's multi-scale entropy and rho of ``arch`` (see the module docstring).

    Raises:
        SpecError: ``arch`` has branched stages: DeepMAD's entropy is that of one chain of
            layers, and is not defined for several streams.
    """
    if arch.branched:
        raise SpecError(
            f"{arch.digest[:12]}: the entropy score takes a network of one stream (DeepMAD's "
            "chain of layers); this one has branched stages"
        )
    log_sum = 0.0  # E: cumulative sum of 0.5 * log(fan-in)
    layers = 0  # L: cumulative number of main-path layers
    log_width = 0.0  # cumulative sum of log(fan-in)
    ends: list[tuple[float, int, float, int, int]] = []  # (E, L, logW, C, H*W) at stage ends
    channels = hw = 0
    for layer in arch.layers:
        _, h_in, w_in = layer.in_shape
        _, h_out, w_out = layer.out_shape
        reduces = layer.role in ("downsample", "block") and h_out * w_out < h_in * w_in
        if reduces and layers:
            ends.append((log_sum, layers, log_width, channels, hw))
        fans = layer.family.fan_ins(layer.in_shape, layer.block.out_channels, layer.block.params)
        for f in fans:
            lf = math.log(f)
            log_sum += 0.5 * lf
            log_width += lf
        layers += len(fans)
        channels, h, w = layer.family.feature_shape(
            layer.in_shape, layer.block.out_channels, layer.block.params
        )
        hw = h * w
    ends.append((log_sum, layers, log_width, channels, hw))
    alphas = stage_alphas(len(ends), alpha)
    entropies = tuple((math.log(c) + math.log(n)) * e for e, _, _, c, n in ends)
    rhos = tuple(n_layers / math.exp(lw / n_layers) for _, n_layers, lw, _, _ in ends)
    score = sum(a * h for a, h in zip(alphas, entropies, strict=True))
    return EntropyStats(entropies, rhos, score)


class Entropy(Evaluator):
    """DeepMAD's multi-scale entropy (maximise) and effectiveness rho (a constraint: rho <= rho0).

    Args:
        alpha: Per-stage weights; default 1 per stage and 8 for the last.
    """

    name = "entropy"
    cheap = True
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("entropy", "max", "DeepMAD multi-scale entropy (alpha = 1,...,1,8)"),
        Metric(
            "rho", "min", "DeepMAD effectiveness: depth / geometric-mean width, max over stages"
        ),
    )

    def __init__(self, *, alpha: Sequence[float] | None = None) -> None:
        self.alpha = tuple(alpha) if alpha is not None else None

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        out = []
        for arch in archs:
            stats = deepmad_entropy(arch, self.alpha)
            out.append({"entropy": stats.score, "rho": stats.rho})
        return out

    def config(self) -> dict[str, object]:
        return {"alpha": list(self.alpha) if self.alpha else None}
