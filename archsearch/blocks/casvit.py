"""CAS-ViT's family (Zhang et al., 2024; Tianfang-Zhang/CAS-ViT ``AdditiveBlock``).

* ``casvit``: convolutional additive self-attention. A local integration branch (1x1 conv, BN,
  3x3 depthwise conv, GELU, 1x1 conv; residual); then BN and the additive token mixer: a
  bias-free 1x1 conv gives q, k and v; q and k each pass a spatial gate (3x3 depthwise conv,
  BN, ReLU, a bias-free 1x1 conv to one channel, sigmoid) and a channel gate (global average,
  bias-free 1x1 conv, sigmoid); the output is a 3x3 depthwise conv of ``dwconv(q + k) * v``
  (residual); then BN and a 1x1-conv GELU MLP (residual). Every depthwise conv is biased.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archsearch.blocks.base import (
    Cost,
    LayerCall,
    Param,
    Role,
    Shape,
    WidthKeepingFamily,
    conv_cost,
    times,
)
from archsearch.blocks.token_mixers import MLP_RATIO


class CASViT(WidthKeepingFamily):
    name = "casvit"
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "CAS-ViT (Zhang et al., 2024), Tianfang-Zhang/CAS-ViT AdditiveBlock"
    params = (Param("hidden", int, times(4), min=1, doc="MLP hidden width"),)
    aliases = (MLP_RATIO,)

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        hid = int(p["hidden"])

        def dw() -> Cost:
            return conv_cost(c, c, 3, h, w, groups=c, bias=True)

        gate = (  # spatial gate, then channel gate (on the pooled 1x1 map)
            dw() + Cost(2 * c) + conv_cost(c, 1, 1, h, w) + conv_cost(c, c, 1, 1, 1)
        )
        return (
            conv_cost(c, c, 1, h, w, bias=True) * 2 + dw() + Cost(2 * c)  # local integration
            + Cost(4 * c)  # the two block norms
            + conv_cost(c, 3 * c, 1, h, w)  # q, k, v
            + gate * 2
            + dw() * 2  # the mixer's depthwise conv and projection
            + conv_cost(c, hid, 1, h, w, bias=True)
            + conv_cost(hid, c, 1, h, w, bias=True)
        )  # fmt: skip

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        c = shape[0]
        return (c, 9, c, c, 9, 9, c, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import CASViTBlock

        return LayerCall(CASViTBlock, (out, int(p["hidden"])))
