"""HorNet's family (Rao et al., NeurIPS 2022; raoyongming/HorNet).

* ``hornet``: a ConvNeXt-like block whose token mixer is the recursive gated convolution
  (gnConv) of ``order`` n: a 1x1 conv to twice the width, split into a gate of ``C / 2^(n-1)``
  channels and ``C (2 - 2^(1-n))`` channels that a ``k x k`` depthwise conv (bias, scaled by
  1/3 as in every HorNet) splits into n gates of growing width; the gate is multiplied by the
  first, then n-1 times widened by a 1x1 conv and multiplied by the next, then a 1x1 conv.
  Channels-first LayerNorm before it, layer scale, residual; then LayerNorm, GELU MLP, layer
  scale, residual.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any, ClassVar

from archsearch.blocks.base import (
    Cost,
    LayerCall,
    Param,
    Role,
    Shape,
    WidthKeepingFamily,
    conv_cost,
    linear_cost,
    odd_kernel,
    times,
)
from archsearch.blocks.token_mixers import MLP_RATIO


def gn_dims(width: int, order: int) -> list[int]:
    """The widths of gnConv's gates, narrowest first (``width / 2^(order-1)`` ... ``width``)."""
    return [width // 2**i for i in reversed(range(order))]


class HorNet(WidthKeepingFamily):
    name = "hornet"
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "HorNet (Rao et al., NeurIPS 2022), raoyongming/HorNet Block and gnconv"
    params = (
        Param("order", int, 3, min=1, max=8, doc="interaction order n of the gated conv"),
        Param("kernel", int, 7, min=1, doc="depthwise kernel (odd)"),
        Param("hidden", int, times(4), min=1, doc="MLP hidden width"),
        Param("layer_scale", bool, True, doc="learnable per-channel scales of both branches"),
    )
    aliases = (MLP_RATIO,)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        reason = super().check(shape, out, p) or odd_kernel(p)
        if reason:
            return reason
        step = 2 ** (int(p["order"]) - 1)
        if out % step:
            return (
                f"order={p['order']} halves the width {int(p['order']) - 1} times: "
                f"out_channels={out} must be a multiple of {step}"
            )
        return None

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        dims, k, hid = gn_dims(c, int(p["order"])), int(p["kernel"]), int(p["hidden"])
        n = h * w
        total = (
            Cost(4 * c + (2 * c if p["layer_scale"] else 0))
            + conv_cost(c, 2 * c, 1, h, w, bias=True)
            + conv_cost(sum(dims), sum(dims), k, h, w, groups=sum(dims), bias=True)
            + conv_cost(c, c, 1, h, w, bias=True)
            + linear_cost(c, hid, n)
            + linear_cost(hid, c, n)
        )
        for a, b in pairwise(dims):
            total += conv_cost(a, b, 1, h, w, bias=True)
        return total

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        c = shape[0]
        dims = gn_dims(c, int(p["order"]))
        return (c, int(p["kernel"]) ** 2, *dims[:-1], c, c, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import HorNetBlock

        args = (out, int(p["order"]), int(p["kernel"]), int(p["hidden"]))
        return LayerCall(HorNetBlock, args, {"layer_scale": bool(p["layer_scale"])})
