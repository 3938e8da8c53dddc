"""Blocks of multi-stream networks (a stage's ``branches``; see :mod:`archsearch.spec`).

* ``resize``: resizes the map to ``size x size`` (bicubic by default), e.g. the image a
  second stream reads at another resolution (CrossViT's 224x224 large-patch branch beside its
  240x240 small-patch one). Interpolation counts zero MACs, as FlopCounterMode counts it.
* ``cross_cls``: CrossViT's fusion (Chen et al., ICCV 2021): the stream's class token, projected
  to the width of the next stream, attends over itself and that stream's patch tokens and is
  projected back. It reads a second stream, so it is a ``fuse`` block of a branched stage; its
  ``context`` and ``context_tokens`` state the other stream's width and token count (checked
  where it is placed), so that its cost is a function of its own parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archsearch.blocks.base import (
    ACTIVATIONS,
    Cost,
    LayerCall,
    Param,
    Role,
    Shape,
    WidthKeepingFamily,
    act_params,
    class_attention_cost,
    heads_divide,
    linear_cost,
)
from archsearch.limits import MAX_INPUT_ELEMENTS


class Resize(WidthKeepingFamily):
    name = "resize"
    roles: ClassVar[frozenset[Role]] = frozenset({"block", "downsample"})
    reference = "CrossViT (Chen et al., ICCV 2021): each branch reads the image at its own size"
    params = (
        Param("size", int, 224, min=1, doc="output height and width"),
        Param(
            "mode",
            str,
            "bicubic",
            choices=("bicubic", "bilinear", "nearest"),
            doc="interpolation (align_corners false)",
        ),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        reason = super().check(shape, out, p)
        if reason:
            return reason
        size = int(p["size"])
        if shape[0] * size * size > MAX_INPUT_ELEMENTS:
            return (
                f"size={size} makes a map of {shape[0] * size * size:,} values; at most "
                f"{MAX_INPUT_ELEMENTS:,} (C x size x size): choose a smaller size"
            )
        return None

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape[0], int(p["size"]), int(p["size"])

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        return Cost()

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return ()

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import Resize as ResizeModule

        return LayerCall(ResizeModule, (int(p["size"]),), {"mode": str(p["mode"])})


class CrossCls(WidthKeepingFamily):
    name = "cross_cls"
    attention = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "CrossViT cross-attention fusion (Chen et al., ICCV 2021), IBM/CrossViT"
    params = (
        Param("context", int, None, min=1, doc="width of the stream it reads (the next one)"),
        Param(
            "context_tokens",
            int,
            None,
            min=1,
            doc="tokens of the stream it reads, its class token included",
        ),
        Param("heads", int, 1, min=1, doc="attention heads at the context's width"),
        Param("qkv_bias", bool, True, doc="biases of the query, key and value projections"),
        Param("act", str, "gelu", choices=ACTIVATIONS, doc="activation of both projections"),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        reason = super().check(shape, out, p)
        if reason:
            return reason
        if shape[2] != 1:
            return (
                f"cross_cls needs a token sequence (C, tokens, 1) with a class token first; "
                f"the input is a {shape[1]}x{shape[2]} map: put a cls_token block before it"
            )
        reason = heads_divide(int(p["context"]), int(p["heads"]))
        return reason.replace("out_channels", "context") if reason else None

    def context(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape | None:
        return int(p["context"]), int(p["context_tokens"]), 1

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, d, n = shape[0], int(p["context"]), int(p["context_tokens"])
        heads, bias = int(p["heads"]), bool(p["qkv_bias"])
        norms = Cost(2 * c + 2 * d + 2 * d + 2 * act_params(str(p["act"])))
        projections = linear_cost(c, d, 1) + linear_cost(d, c, 1)
        return norms + projections + class_attention_cost(d, n, heads, qkv_bias=bias)

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return ()

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import CrossClsFusion

        kwargs = {"qkv_bias": bool(p["qkv_bias"]), "act": str(p["act"])}
        return LayerCall(CrossClsFusion, (out, int(p["context"]), int(p["heads"])), kwargs)
