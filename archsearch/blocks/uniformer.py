"""UniFormer's convolutional block (Li et al., ICLR 2022; Sense-X/UniFormer ``CBlock``).

* ``uniformer_conv``: local multi-head relation aggregation written as convolutions: BatchNorm,
  a biased 1x1 conv, a biased ``k x k`` depthwise conv (the local "attention"), a biased 1x1
  conv, residual; then BatchNorm and a 1x1-conv GELU MLP, residual. UniFormer puts a dynamic
  position embedding before each block: a ``pos_conv`` block of its own (its ``SABlock`` is
  ``pos_conv`` then ``mhsa``).
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
    odd_kernel,
    times,
)
from archsearch.blocks.token_mixers import MLP_RATIO


class UniFormerConv(WidthKeepingFamily):
    name = "uniformer_conv"
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "UniFormer CBlock (Li et al., ICLR 2022), Sense-X/UniFormer"
    params = (
        Param("kernel", int, 5, min=1, doc="depthwise kernel of the local aggregation (odd)"),
        Param("hidden", int, times(4), min=1, doc="MLP hidden width"),
    )
    aliases = (MLP_RATIO,)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return super().check(shape, out, p) or odd_kernel(p)

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        k, hid = int(p["kernel"]), int(p["hidden"])
        return (
            Cost(4 * c)  # two BatchNorms
            + conv_cost(c, c, 1, h, w, bias=True)
            + conv_cost(c, c, k, h, w, groups=c, bias=True)
            + conv_cost(c, c, 1, h, w, bias=True)
            + conv_cost(c, hid, 1, h, w, bias=True)
            + conv_cost(hid, c, 1, h, w, bias=True)
        )

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        c, k = shape[0], int(p["kernel"])
        return (c, k * k, c, c, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import UniFormerConvBlock

        return LayerCall(UniFormerConvBlock, (out, int(p["kernel"]), int(p["hidden"])))
