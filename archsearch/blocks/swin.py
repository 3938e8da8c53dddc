"""Swin Transformer's families (Liu et al., ICCV 2021; microsoft/Swin-Transformer).

* ``swin``: a Swin block on an NCHW map: LayerNorm, multi-head attention inside non-overlapping
  ``window x window`` windows with a learned relative-position bias per head and signed offset
  (``(2 window - 1)^2`` per head), optionally on the map cyclically shifted by half a window
  (``shift``; keys from different regions of the shifted map are masked out), then LayerNorm
  and MLP, each branch residual. As in the official code, a map no larger than the window is
  one window (the window shrinks to the map's shorter side and there is no shift).
* ``swin_merge``: Swin's PatchMerging downsample: each 2x2 neighbourhood concatenated (4C),
  LayerNorm, and a bias-free linear to the output width.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archsearch.blocks.base import (
    BlockFamily,
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


def swin_window(shape: Shape, window: int, shift: bool) -> tuple[int, int]:
    """The window side and shift a Swin block uses on ``shape`` (the official code's rule)."""
    side = min(shape[1], shape[2])
    if side <= window:
        return side, 0
    return window, window // 2 if shift else 0


class Swin(WidthKeepingFamily):
    name = "swin"
    attention = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "Swin Transformer (Liu et al., ICCV 2021), microsoft/Swin-Transformer"
    params = (
        Param("heads", int, min=1, doc="attention heads (must divide the width)"),
        Param("window", int, 7, min=1, doc="window side (must divide the map's sides)"),
        Param("shift", bool, False, doc="shifted windows (Swin alternates False, True)"),
        Param("hidden", int, times(4), min=1, doc="MLP hidden width"),
        Param("qkv_bias", bool, True, doc="biases of the q/k/v projection"),
    )
    aliases = (MLP_RATIO, HEAD_DIM)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        reason = super().check(shape, out, p) or heads_divide(out, int(p["heads"]))
        if reason:
            return reason
        ws, _ = swin_window(shape, int(p["window"]), bool(p["shift"]))
        if shape[1] % ws or shape[2] % ws:
            return (
                f"window={p['window']} must divide the {shape[1]}x{shape[2]} map (or be at least "
                "its shorter side); choose a window that divides both sides"
            )
        return None

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        n, heads, hid = h * w, int(p["heads"]), int(p["hidden"])
        ws, _ = swin_window(shape, int(p["window"]), bool(p["shift"]))
        m = ws * ws  # tokens per window
        # QK^T and AV: each token meets the m tokens of its window, over all c channels.
        attn = Cost((2 * ws - 1) ** 2 * heads, 2 * n * m * c, heads * n * m + n * c)
        return (
            Cost(4 * c)  # the two LayerNorms
            + linear_cost(c, 3 * c, n, bias=bool(p["qkv_bias"]))
            + attn
            + linear_cost(c, c, n)
            + linear_cost(c, hid, n)
            + linear_cost(hid, c, n)
        )

    def buffers(self, shape: Shape, out: int, p: Mapping[str, Any]) -> int:
        ws, shift = swin_window(shape, int(p["window"]), bool(p["shift"]))
        m = ws * ws  # the bias index (m x m) and, shifted, the mask (windows x m x m)
        return m * m + (shape[1] * shape[2] * m if shift else 1)

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        ws, _ = swin_window(shape, int(p["window"]), bool(p["shift"]))
        c = shape[0]
        return (c, ws * ws, c, c, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import SwinBlock

        ws, shift = swin_window(shape, int(p["window"]), bool(p["shift"]))
        args = (out, int(p["heads"]), ws, shift, int(p["hidden"]), (shape[1], shape[2]))
        return LayerCall(SwinBlock, args, {"qkv_bias": bool(p["qkv_bias"])})


class SwinMerge(BlockFamily):
    name = "swin_merge"
    roles: ClassVar[frozenset[Role]] = frozenset({"downsample"})
    reference = "Swin Transformer PatchMerging (Liu et al., ICCV 2021)"

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        if shape[1] % 2 or shape[2] % 2:
            return f"swin_merge needs even map sides; the input is {shape[1]}x{shape[2]}"
        return super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return out, shape[1] // 2, shape[2] // 2

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        return Cost(8 * c) + linear_cost(4 * c, out, (h // 2) * (w // 2), bias=False)

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return (4 * shape[0],)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import SwinMerge as SwinMergeModule

        return LayerCall(SwinMergeModule, (shape[0], out))
