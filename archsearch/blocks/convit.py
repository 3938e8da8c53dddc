"""ConViT's family (d'Ascoli et al., ICML 2021; facebookresearch/convit).

* ``gpsa``: a transformer block whose attention is gated positional self-attention: per head, a
  learned gate mixes the softmax of content scores (queries and keys from a fused ``qk``
  projection) with the softmax of positional scores, a linear map of each token pair's relative
  position ``(dx, dy, dx^2 + dy^2)`` (the ``pos_proj`` layer, 3 inputs per head), renormalised;
  values from their own projection. LayerNorm and a GELU MLP as in ViT. Works on a map or on a
  token sequence laid out as its square grid, without a class token (ConViT adds it after the
  GPSA blocks: ``cls_token``).
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
    heads_divide,
    linear_cost,
    times,
)
from archsearch.blocks.token_mixers import HEAD_DIM, MLP_RATIO
from archsearch.blocks.tokens import token_grid


class GPSA(WidthKeepingFamily):
    name = "gpsa"
    attention = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "ConViT (d'Ascoli et al., ICML 2021), facebookresearch/convit GPSA"
    params = (
        Param("heads", int, min=1, doc="attention heads (must divide the width)"),
        Param("hidden", int, times(4), min=1, doc="MLP hidden width"),
        Param("qkv_bias", bool, False, doc="biases of the qk and v projections"),
    )
    aliases = (MLP_RATIO, HEAD_DIM)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        reason = super().check(shape, out, p) or heads_divide(out, int(p["heads"]))
        if reason:
            return reason
        if token_grid(shape) is None:
            return (
                f"gpsa needs a map or a square grid of tokens without a class token; the "
                f"input has {shape[1]} tokens"
            )
        return None

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        n, heads, hid, bias = h * w, int(p["heads"]), int(p["hidden"]), bool(p["qkv_bias"])
        # QK^T and AV (n*n*c MACs each), the positional scores of every token pair.
        attn = Cost(heads, 2 * n * n * c, heads * n * n + n * c)
        return (
            Cost(4 * c)
            + linear_cost(c, 2 * c, n, bias=bias)
            + linear_cost(c, c, n, bias=bias)
            + linear_cost(3, heads, n * n)
            + attn
            + linear_cost(c, c, n)
            + linear_cost(c, hid, n)
            + linear_cost(hid, c, n)
        )

    def buffers(self, shape: Shape, out: int, p: Mapping[str, Any]) -> int:
        n = shape[1] * shape[2]
        return 3 * n * n  # the relative positions of every token pair

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        c = shape[0]
        return (c, shape[1] * shape[2], c, c, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import GPSABlock

        grid = token_grid(shape)
        assert grid is not None
        args = (out, int(p["heads"]), int(p["hidden"]), grid)
        return LayerCall(GPSABlock, args, {"qkv_bias": bool(p["qkv_bias"])})
