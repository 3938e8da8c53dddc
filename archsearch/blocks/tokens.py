"""Positional encodings and class tokens as blocks of their own, to insert anywhere.

* ``pos_conv``: a conditional positional encoding, ``x + dwconv_k(x)`` with a biased depthwise
  ``k x k`` conv (CPVT's PEG, Chu et al., ICLR 2023; UniFormer's DPE, Li et al., ICLR 2022), on
  a map, or on a token sequence laid out as its square grid (a class token, if ``cls``, passes
  through unchanged).
* ``pos_embed``: a position embedding added to a map or a token sequence, one value per channel
  and position: learned (ViT's, placed anywhere: VOLO adds it after its first downsample), or
  the fixed sinusoid table of the original Transformer (T2T-ViT; a buffer, no parameters).
* ``cls_token``: a learned class token joins the tokens here: a map or a token sequence
  ``(C, T, 1)`` becomes ``(C, 1 + T, 1)``, the class token first (ConViT joins it after ten
  blocks, CaiT before its class-attention blocks; the head's ``pool: cls`` reads it out).
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
    conv_cost,
    odd_kernel,
)


def token_grid(shape: Shape, cls: bool = False) -> tuple[int, int] | None:
    """The (H, W) grid of a map, or the square grid of a token sequence ``(C, T, 1)`` (less its
    class token when ``cls``); None when a sequence's tokens do not form a square."""
    _, h, w = shape
    if w != 1:
        return h, w
    side = math.isqrt(h - int(cls))
    return (side, side) if side * side == h - int(cls) and side > 0 else None


class PosConv(WidthKeepingFamily):
    name = "pos_conv"
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "CPVT PEG (Chu et al., ICLR 2023); UniFormer DPE (Li et al., ICLR 2022)"
    params = (
        Param("kernel", int, 3, min=1, doc="depthwise kernel size (odd)"),
        Param("cls", bool, False, doc="the input is a token sequence with a class token first"),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        reason = super().check(shape, out, p) or odd_kernel(p)
        if reason:
            return reason
        if token_grid(shape, bool(p["cls"])) is None:
            what = f"{shape[1] - int(bool(p['cls']))} tokens"
            return f"pos_conv needs a map or a square token grid; the input has {what}"
        return None

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        grid = token_grid(shape, bool(p["cls"]))
        assert grid is not None
        c, k = shape[0], int(p["kernel"])
        return conv_cost(c, c, k, grid[0], grid[1], groups=c, bias=True)

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return (int(p["kernel"]) ** 2,)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import PosConv as PosConvModule

        grid = token_grid(shape, bool(p["cls"]))
        assert grid is not None
        return LayerCall(PosConvModule, (out, int(p["kernel"]), grid), {"cls": bool(p["cls"])})


class ClsToken(WidthKeepingFamily):
    name = "cls_token"
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "ConViT (d'Ascoli et al., ICML 2021); CaiT (Touvron et al., ICCV 2021)"

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape[0], 1 + shape[1] * shape[2], 1

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        return Cost(shape[0])

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return ()

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import ClsToken as ClsTokenModule

        return LayerCall(ClsTokenModule, (out,))


class PosEmbed(WidthKeepingFamily):
    name = "pos_embed"
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "ViT (Dosovitskiy et al., ICLR 2021); VOLO (Yuan et al., TPAMI 2022)"
    params = (
        Param(
            "kind",
            str,
            "learned",
            choices=("learned", "sinusoid"),
            doc="learned, or the fixed sinusoid table (positions in row-major order)",
        ),
    )

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        return Cost(shape[0] * shape[1] * shape[2] if p["kind"] == "learned" else 0)

    def buffers(self, shape: Shape, out: int, p: Mapping[str, Any]) -> int:
        return 0 if p["kind"] == "learned" else shape[0] * shape[1] * shape[2]

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return ()

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import PosEmbed as PosEmbedModule

        return LayerCall(PosEmbedModule, shape, {"learned": p["kind"] == "learned"})
