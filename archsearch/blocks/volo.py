"""VOLO's families (Yuan et al., TPAMI 2022; sail-sg/volo, timm ``volo``), and CaiT's class
attention they end with.

* ``outlooker``: outlook attention: each ``stride x stride`` cell of the map (average-pooled)
  predicts, with one linear layer, the ``k^2 x k^2`` attention weights of the ``k x k``
  neighbourhood around it, per head; values from a linear layer are unfolded, weighted and
  folded back (overlaps summed), then projected. LayerNorm and a GELU MLP, both residual.
* ``class_attn``: a class-attention block: only the class token (first of the sequence) queries
  the LayerNormed sequence and then goes through the MLP; the other tokens pass unchanged
  (CaiT, Touvron et al., ICCV 2021; VOLO's post-network).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from archsearch.blocks.base import (
    Cost,
    LayerCall,
    Param,
    Role,
    Shape,
    WidthKeepingFamily,
    class_attention_cost,
    heads_divide,
    linear_cost,
    odd_kernel,
    times,
)
from archsearch.blocks.token_mixers import HEAD_DIM, MLP_RATIO


class Outlooker(WidthKeepingFamily):
    name = "outlooker"
    attention = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "VOLO Outlooker (Yuan et al., TPAMI 2022), sail-sg/volo"
    params = (
        Param("heads", int, min=1, doc="attention heads (must divide the width)"),
        Param("kernel", int, 3, min=1, doc="neighbourhood side (odd)"),
        Param("stride", int, 2, min=1, max=8, doc="side of the cells that share weights"),
        Param("hidden", int, times(3), min=1, doc="MLP hidden width"),
        Param("qkv_bias", bool, False, doc="bias of the value projection"),
    )
    aliases = (MLP_RATIO, HEAD_DIM)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        reason = super().check(shape, out, p) or odd_kernel(p)
        return reason or heads_divide(out, int(p["heads"]))

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        s, kk, heads = int(p["stride"]), int(p["kernel"]) ** 2, int(p["heads"])
        n, cells, hid = h * w, math.ceil(h / s) * math.ceil(w / s), int(p["hidden"])
        return (
            Cost(4 * c)
            + linear_cost(c, c, n, bias=bool(p["qkv_bias"]))  # values
            + linear_cost(c, kk * kk * heads, cells)  # attention weights per cell
            + Cost(0, cells * kk * kk * c, cells * kk * c)  # weights x unfolded values
            + linear_cost(c, c, n)
            + linear_cost(c, hid, n)
            + linear_cost(hid, c, n)
        )

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        c = shape[0]
        return (c, int(p["kernel"]) ** 2, c, c, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import OutlookerBlock

        args = (out, int(p["heads"]), int(p["kernel"]), int(p["stride"]), int(p["hidden"]))
        return LayerCall(OutlookerBlock, args, {"qkv_bias": bool(p["qkv_bias"])})


class ClassAttn(WidthKeepingFamily):
    name = "class_attn"
    attention = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "CaiT class attention (Touvron et al., ICCV 2021); VOLO post-network"
    params = (
        Param("heads", int, min=1, doc="attention heads (must divide the width)"),
        Param("hidden", int, times(4), min=1, doc="MLP hidden width"),
        Param("qkv_bias", bool, False, doc="biases of the q and kv projections"),
    )
    aliases = (MLP_RATIO, HEAD_DIM)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        reason = super().check(shape, out, p) or heads_divide(out, int(p["heads"]))
        if reason:
            return reason
        if shape[2] != 1 or shape[1] < 2:
            return (
                f"class_attn needs a token sequence (C, 1 + tokens, 1) with the class token "
                f"first (put a cls_token block before it); the input is {shape}"
            )
        return None

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, t = shape[0], shape[1]
        heads, hid, bias = int(p["heads"]), int(p["hidden"]), bool(p["qkv_bias"])
        return (
            Cost(4 * c)
            + class_attention_cost(c, t, heads, qkv_bias=bias)
            + linear_cost(c, hid, 1)
            + linear_cost(hid, c, 1)
        )

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        c = shape[0]
        return (c, shape[1], c, c, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import ClassAttnBlock

        args = (out, int(p["heads"]), int(p["hidden"]))
        return LayerCall(ClassAttnBlock, args, {"qkv_bias": bool(p["qkv_bias"])})
