"""ViT-ResNAS families: multi-stage vision transformers with residual spatial reduction.

Liao, Karaman and Sze, "Searching for Efficient Multi-Stage Vision Transformers" (ViT-ResNAS,
2021), github.com/yilunliao/vit-search. A patch embedding with a learned position embedding,
then stages of transformer blocks separated by residual spatial reduction.

* ``pos_patch``: a ``p x p`` stride-``p`` patch-embedding conv plus a learned position
  embedding of the whole map; the output stays an NCHW map (no class token), so that later
  stages can reduce it spatially.
* ``res_reduce``: residual spatial reduction. Main path: LayerNorm over channels, a 3x3
  stride-2 conv (padding 1) to the new width and a new learned position embedding; residual
  path: 2x2 average pooling (stride 2, ceil mode, so a 7x7 map becomes 4x4 like the conv's)
  with the extra channels zero-padded. Needs ``out_channels >= in_channels``.
* ``vit_block``: a pre-norm transformer block whose attention has ``heads`` heads of
  ``head_dim`` each, independent of the embedding width (separate q, k and v projections to
  ``heads * head_dim``, an output projection back to the width), then an MLP with GELU. Kept
  separate from ``mhsa`` (whose head width is width/heads) because ViT-ResNAS searches the
  number of heads and the embedding width independently; with separate q/k/v, keeping the
  first ``h`` heads of a larger block is a prefix of each projection, which is what the
  weight-sharing supernet slices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from archsearch.blocks.base import (
    BlockFamily,
    Cost,
    LayerCall,
    Param,
    Role,
    Shape,
    conv_cost,
    keeps_width,
    linear_cost,
    times,
)
from archsearch.blocks.token_mixers import MLP_RATIO

REFERENCE = "ViT-ResNAS (Liao et al., 2021), yilunliao/vit-search"


class PosPatch(BlockFamily):
    name = "pos_patch"
    roles: ClassVar[frozenset[Role]] = frozenset({"stem"})
    reference = REFERENCE
    params = (
        Param("patch", int, 16, min=1, doc="patch size = kernel = stride"),
        Param("pos_embed", bool, True, doc="add a learned position embedding of the map"),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        patch = int(p["patch"])
        if min(shape[1], shape[2]) < patch:
            return f"input {shape[1]}x{shape[2]} is smaller than one {patch}x{patch} patch"
        return super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        patch = int(p["patch"])
        return out, shape[1] // patch, shape[2] // patch

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        _, h, w = self.out_shape(shape, out, p)
        pos = out * h * w if p["pos_embed"] else 0
        return conv_cost(shape[0], out, int(p["patch"]), h, w, bias=True) + Cost(pos)

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return (shape[0] * int(p["patch"]) ** 2,)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import PosPatchEmbed

        _, h, w = self.out_shape(shape, out, p)
        args = (shape[0], out, int(p["patch"]), (h, w))
        return LayerCall(PosPatchEmbed, args, {"pos": bool(p["pos_embed"])})


class ResReduce(BlockFamily):
    name = "res_reduce"
    roles: ClassVar[frozenset[Role]] = frozenset({"downsample"})
    reference = REFERENCE
    params = (Param("pos_embed", bool, True, doc="add a new learned position embedding"),)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        if out < shape[0]:
            return (
                f"res_reduce zero-pads its residual path: out_channels={out} must be >= "
                f"in_channels={shape[0]}"
            )
        return super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return out, math.ceil(shape[1] / 2), math.ceil(shape[2] / 2)

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        _, h, w = self.out_shape(shape, out, p)
        pos = out * h * w if p["pos_embed"] else 0
        return Cost(2 * shape[0] + pos) + conv_cost(shape[0], out, 3, h, w, bias=True)

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return (shape[0] * 9,)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import ResidualReduction

        _, h, w = self.out_shape(shape, out, p)
        args = (shape[0], out, (h, w))
        return LayerCall(ResidualReduction, args, {"pos": bool(p["pos_embed"])})


class ViTBlock(BlockFamily):
    name = "vit_block"
    attention = True
    width_keeping = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = REFERENCE
    params = (
        Param("heads", int, min=1, doc="attention heads"),
        Param("head_dim", int, 32, min=1, doc="query/key/value width per head"),
        Param("hidden", int, times(4), min=1, doc="MLP hidden width"),
        Param("qkv_bias", bool, True, doc="biases of the q, k and v projections"),
    )
    aliases = (MLP_RATIO,)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return keeps_width(shape, out, self.name) or super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        n, inner, hid = h * w, int(p["heads"]) * int(p["head_dim"]), int(p["hidden"])
        return (
            Cost(4 * c)  # two LayerNorms
            + linear_cost(c, 3 * inner, n, bias=bool(p["qkv_bias"]))
            + Cost(0, 2 * n * n * inner, int(p["heads"]) * n * n + n * inner)  # QK^T, AV
            + linear_cost(inner, c, n)
            + linear_cost(c, hid, n)
            + linear_cost(hid, c, n)
        )

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        c, h, w = shape
        return (c, h * w, int(p["heads"]) * int(p["head_dim"]), c, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import ResNASBlock

        args = (out, int(p["heads"]), int(p["head_dim"]), int(p["hidden"]))
        return LayerCall(ResNASBlock, args, {"qkv_bias": bool(p["qkv_bias"])})
