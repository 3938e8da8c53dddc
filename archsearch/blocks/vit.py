"""Vision-transformer families: ViT embedding, EfficientFormer Meta3D, TinyViT, stage norms.

* ``vit_embed``: ViT/DeiT patch embedding (``p x p`` stride-``p`` conv) with a class token and
  a learned position embedding (Dosovitskiy et al., ICLR 2021; Touvron et al., ICML 2021). Its
  output is a *token sequence*, laid out as ``(C, tokens, 1)``: blocks that mix tokens
  (``mhsa``) work on it unchanged and the head can pool the class token.
* ``effformer_attn``: EfficientFormer's Meta3D block: LayerNorm, attention with ``key_dim``
  queries/keys, ``attn_ratio * key_dim`` values and a learned bias per head and per offset of
  the map, LayerNorm, MLP, layer scales (Li et al., NeurIPS 2022).
* ``tinyvit``: TinyViT's block: attention in ``window x window`` windows (the map padded to a
  multiple of the window) with per-window offset biases, a depthwise ``local_conv`` conv with
  BN, and an MLP with its own LayerNorm (Wu et al., ECCV 2022).
* ``tinyvit_merge``: TinyViT's PatchMerging: 1x1 conv, 3x3 stride-2 depthwise conv, 1x1 conv,
  each with BN (GELU after the first two).
* ``norm``: a LayerNorm/BatchNorm/GroupNorm of the map, e.g. the norm that closes each PVTv2
  stage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from archsearch.blocks.base import (
    ACTIVATIONS,
    BlockFamily,
    Cost,
    LayerCall,
    Param,
    Role,
    Shape,
    act_params,
    conv_cost,
    conv_out,
    group_norm_fits,
    heads_divide,
    keeps_width,
    linear_cost,
    odd_kernel,
    times,
)
from archsearch.blocks.token_mixers import HEAD_DIM, MLP_RATIO


class ViTEmbed(BlockFamily):
    name = "vit_embed"
    roles: ClassVar[frozenset[Role]] = frozenset({"stem", "block"})
    reference = "ViT (Dosovitskiy et al., ICLR 2021); DeiT (Touvron et al., ICML 2021)"
    params = (
        Param("patch", int, 16, min=1, doc="patch size = kernel = stride"),
        Param("cls", bool, True, doc="prepend a learned class token"),
        Param("pos_embed", bool, True, doc="add a learned position embedding"),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        patch = int(p["patch"])
        if min(shape[1], shape[2]) < patch:
            return f"input {shape[1]}x{shape[2]} is smaller than one {patch}x{patch} patch"
        return super().check(shape, out, p)

    def _grid(self, shape: Shape, p: Mapping[str, Any]) -> tuple[int, int]:
        patch = int(p["patch"])
        return shape[1] // patch, shape[2] // patch

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        gh, gw = self._grid(shape, p)
        return out, gh * gw + int(bool(p["cls"])), 1

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        gh, gw = self._grid(shape, p)
        tokens = gh * gw + int(bool(p["cls"]))
        extra = (out if p["cls"] else 0) + (tokens * out if p["pos_embed"] else 0)
        return conv_cost(shape[0], out, int(p["patch"]), gh, gw, bias=True) + Cost(extra)

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return (shape[0] * int(p["patch"]) ** 2,)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import ViTEmbed

        args = (shape[0], out, int(p["patch"]), self.out_shape(shape, out, p)[1])
        return LayerCall(ViTEmbed, args, {"cls": bool(p["cls"]), "pos": bool(p["pos_embed"])})


class EffFormerAttn(BlockFamily):
    name = "effformer_attn"
    attention = True
    width_keeping = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "EfficientFormer Meta3D (Li et al., NeurIPS 2022), snap-research/EfficientFormer"
    params = (
        Param("heads", int, 8, min=1, doc="attention heads"),
        Param("key_dim", int, 32, min=1, doc="query/key width per head"),
        Param("attn_ratio", int, 4, min=1, doc="value width per head / key_dim"),
        Param("hidden", int, times(4), min=1, doc="MLP hidden width"),
        Param("layer_scale", bool, True, doc="learnable per-channel scales of both branches"),
    )
    aliases = (MLP_RATIO,)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return keeps_width(shape, out, self.name) or super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        n, heads, kd = h * w, int(p["heads"]), int(p["key_dim"])
        vd, hid = int(p["attn_ratio"]) * kd, int(p["hidden"])
        # QK^T (key_dim) and AV (value dim) per head; one learned bias per head and offset.
        attn = Cost(heads * n, n * n * heads * (kd + vd), heads * n * n + n * heads * vd)
        return (
            Cost(4 * c + (2 * c if p["layer_scale"] else 0))
            + linear_cost(c, heads * (2 * kd + vd), n)
            + attn
            + linear_cost(heads * vd, c, n)
            + linear_cost(c, hid, n)
            + linear_cost(hid, c, n)
        )

    def buffers(self, shape: Shape, out: int, p: Mapping[str, Any]) -> int:
        n = shape[1] * shape[2]
        return n * n  # the bias index

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        c, h, w = shape
        vd = int(p["attn_ratio"]) * int(p["key_dim"]) * int(p["heads"])
        return (c, h * w, vd, c, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import MetaBlock3d

        args = (
            out,
            int(p["heads"]),
            int(p["key_dim"]),
            int(p["attn_ratio"]),
            int(p["hidden"]),
            (shape[1], shape[2]),
        )
        return LayerCall(MetaBlock3d, args, {"layer_scale": bool(p["layer_scale"])})


class TinyViT(BlockFamily):
    name = "tinyvit"
    attention = True
    width_keeping = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "TinyViT (Wu et al., ECCV 2022), microsoft/Cream TinyViTBlock"
    params = (
        Param("heads", int, min=1, doc="attention heads (must divide the width)"),
        Param("window", int, 7, min=1, doc="attention window side"),
        Param("hidden", int, times(4), min=1, doc="MLP hidden width"),
        Param("local_conv", int, 3, min=1, doc="depthwise conv kernel between attention and MLP"),
    )
    aliases = (MLP_RATIO, HEAD_DIM)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        reason = (
            keeps_width(shape, out, self.name)
            or odd_kernel(p, "local_conv")
            or heads_divide(out, int(p["heads"]))
        )
        return reason or super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        ws, heads, hid, k = (
            int(p["window"]),
            int(p["heads"]),
            int(p["hidden"]),
            int(p["local_conv"]),
        )
        n = h * w
        padded = math.ceil(h / ws) * ws * math.ceil(w / ws) * ws  # tokens attended, padding in
        attn = Cost(
            heads * ws * ws, 2 * padded * ws * ws * c, heads * padded * ws * ws + padded * c
        )
        return (
            Cost(6 * c)  # attention LayerNorm, local conv BN, MLP LayerNorm
            + linear_cost(c, 3 * c, padded)
            + attn
            + linear_cost(c, c, padded)
            + conv_cost(c, c, k, h, w, groups=c)
            + linear_cost(c, hid, n)
            + linear_cost(hid, c, n)
        )

    def buffers(self, shape: Shape, out: int, p: Mapping[str, Any]) -> int:
        m = int(p["window"]) ** 2
        return m * m  # the bias index of a window

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        c = shape[0]
        ws, k = int(p["window"]), int(p["local_conv"])
        return (c, ws * ws, c, k * k, c, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import TinyViTBlock

        args = (out, int(p["heads"]), int(p["window"]), int(p["hidden"]), int(p["local_conv"]))
        return LayerCall(TinyViTBlock, args)


class TinyViTMerge(BlockFamily):
    name = "tinyvit_merge"
    roles: ClassVar[frozenset[Role]] = frozenset({"downsample"})
    reference = "TinyViT PatchMerging (Wu et al., ECCV 2022)"
    params = (
        Param(
            "act",
            str,
            "gelu",
            choices=ACTIVATIONS,
            doc="activation",
        ),
    )

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return out, conv_out(shape[1], 3, 2, 1), conv_out(shape[2], 3, 2, 1)

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        _, ho, wo = self.out_shape(shape, out, p)
        return (
            conv_cost(c, out, 1, h, w)
            + conv_cost(out, out, 3, ho, wo, groups=out)
            + conv_cost(out, out, 1, ho, wo)
            + Cost(6 * out + 2 * act_params(str(p["act"])))
        )

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return (shape[0], 9, out)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import tinyvit_merge

        return LayerCall(tinyvit_merge, (shape[0], out), {"act": str(p["act"])})


class StageNorm(BlockFamily):
    name = "norm"
    width_keeping = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "PVTv2 stage norms (Wang et al., CVMJ 2022)"
    params = (Param("kind", str, "ln", choices=("ln", "bn", "gn"), doc="normalisation"),)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return (
            keeps_width(shape, out, self.name)
            or group_norm_fits(str(p["kind"]), shape)
            or super().check(shape, out, p)
        )

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        return Cost(2 * shape[0])

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return ()

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import make_norm2d

        return LayerCall(make_norm2d, (str(p["kind"]), out))
