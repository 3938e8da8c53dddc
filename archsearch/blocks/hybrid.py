"""Hybrid conv/attention families of Next-ViT and CvT.

* ``ncb``: Next-ViT's Next Convolution Block: a patch embedding (2x2 average pool when
  strided, 1x1 conv + BN when the shape changes), multi-head convolutional attention (grouped
  3x3 conv with ``head_dim`` channels per group, BN, ReLU, 1x1 conv) as a residual branch, and
  a BN + conv MLP residual branch (Li et al., "Next-ViT", 2022).
* ``ntb``: Next-ViT's Next Transformer Block: the patch embedding to ``mhsa_out`` channels,
  efficient MHSA (keys/values from the token sequence average-pooled ``sr^2`` times, BN) as a
  residual branch, a 1x1 projection of the result to the remaining channels with its own
  convolutional-attention branch, both concatenated, then a BN + conv MLP.
* ``cvt_embed``: CvT's convolutional token embedding (conv + LayerNorm), optionally adding a
  class token, after which the stage is a token sequence ``(C, 1 + H*W, 1)`` (Wu et al.,
  "CvT", ICCV 2021).
* ``cvt``: CvT's block: queries, keys and values each from a depthwise conv (stride
  ``stride_kv`` for keys/values) with BN, then linear projections, attention scaled by the full
  width, and a QuickGELU MLP; the class token, when present, skips the convs.
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
    conv_cost,
    conv_out,
    heads_divide,
    keeps_width,
    linear_cost,
    odd_kernel,
    times,
)
from archsearch.blocks.token_mixers import MLP_RATIO
from archsearch.blocks.tokens import token_grid


def make_divisible(value: float, divisor: int = 32) -> int:
    """Next-ViT's channel rounding: nearest multiple of ``divisor``, never 10% below."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _strided(shape: Shape, stride: int) -> tuple[int, int]:
    """Map size after Next-ViT's 2x2 ceil-mode average pool (stride 2) or unchanged."""
    if stride == 2:
        return (shape[1] + 1) // 2, (shape[2] + 1) // 2
    return shape[1], shape[2]


def _patch_embed(c_in: int, c_out: int, stride: int, h: int, w: int) -> Cost:
    if stride == 2 or c_in != c_out:
        return conv_cost(c_in, c_out, 1, h, w) + Cost(2 * c_out)
    return Cost()


def _conv_attention(c: int, head_dim: int, h: int, w: int) -> Cost:
    return conv_cost(c, c, 3, h, w, groups=c // head_dim) + Cost(2 * c) + conv_cost(c, c, 1, h, w)


def _conv_mlp(c: int, hidden: int, h: int, w: int) -> Cost:
    return conv_cost(c, hidden, 1, h, w, bias=True) + conv_cost(hidden, c, 1, h, w, bias=True)


class NextConvBlock(BlockFamily):
    name = "ncb"
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "Next-ViT NCB (Li et al., 2022), bytedance/Next-ViT"
    params = (
        Param("stride", int, 1, choices=(1, 2), doc="2: 2x2 average pool first"),
        Param("hidden", int, times(3), min=1, doc="MLP hidden width"),
        Param("head_dim", int, 32, min=1, doc="channels per group of the attention conv"),
    )
    aliases = (MLP_RATIO,)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        if out % int(p["head_dim"]):
            return f"head_dim={p['head_dim']} does not divide out_channels={out}"
        return super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return (out, *_strided(shape, int(p["stride"])))

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        h, w = _strided(shape, int(p["stride"]))
        return (
            _patch_embed(shape[0], out, int(p["stride"]), h, w)
            + _conv_attention(out, int(p["head_dim"]), h, w)
            + Cost(2 * out)
            + _conv_mlp(out, int(p["hidden"]), h, w)
        )

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        embed = (shape[0],) if int(p["stride"]) == 2 or shape[0] != out else ()
        return (*embed, int(p["head_dim"]) * 9, out, out, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import NextConvBlock

        args = (shape[0], out, int(p["stride"]), int(p["hidden"]), int(p["head_dim"]))
        return LayerCall(NextConvBlock, args)


class NextTransformerBlock(BlockFamily):
    name = "ntb"
    attention = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "Next-ViT NTB (Li et al., 2022), bytedance/Next-ViT"
    params = (
        Param("stride", int, 1, choices=(1, 2), doc="2: 2x2 average pool first"),
        Param("sr", int, 1, min=1, doc="keys/values average-pooled sr^2 times"),
        Param("head_dim", int, 32, min=1, doc="channels per attention head"),
        Param(
            "mhsa_out",
            int,
            lambda out, p: make_divisible(int(out * 0.75), 32),
            min=1,
            doc="channels of the attention branch (default: 3/4 of the width, multiple of 32)",
        ),
        Param("hidden", int, times(2), min=1, doc="MLP hidden width"),
    )
    aliases = (MLP_RATIO,)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        d, hd = int(p["mhsa_out"]), int(p["head_dim"])
        if not 0 < d < out:
            return f"mhsa_out={d} must lie between 1 and out_channels-1={out - 1}"
        if d % hd or (out - d) % hd:
            return f"head_dim={hd} must divide mhsa_out={d} and out_channels-mhsa_out={out - d}"
        h, w = _strided(shape, int(p["stride"]))
        sr = int(p["sr"])
        if h * w < sr * sr:
            return f"sr={sr}: the {h}x{w} map has fewer than sr^2 tokens"
        return super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return (out, *_strided(shape, int(p["stride"])))

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        stride, sr, hd = int(p["stride"]), int(p["sr"]), int(p["head_dim"])
        d, hid = int(p["mhsa_out"]), int(p["hidden"])
        m = out - d
        h, w = _strided(shape, stride)
        n = h * w
        n_kv = n // (sr * sr) if sr > 1 else n
        heads = d // hd
        return (
            _patch_embed(shape[0], d, stride, h, w)
            + Cost(2 * d + (2 * d if sr > 1 else 0))  # norm1, BN of the pooled keys/values
            + linear_cost(d, d, n)
            + linear_cost(d, d, n_kv) * 2
            + Cost(0, 2 * n * n_kv * d, heads * n * n_kv + n * d)
            + linear_cost(d, d, n)
            + _patch_embed(d, m, 1, h, w)
            + _conv_attention(m, hd, h, w)
            + Cost(2 * out)
            + _conv_mlp(out, hid, h, w)
        )

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        # The attention branch and the MLP; the convolutional-attention branch is concatenated
        # beside it, like a side path.
        stride, sr, d = int(p["stride"]), int(p["sr"]), int(p["mhsa_out"])
        h, w = _strided(shape, stride)
        n_kv = (h * w) // (sr * sr) if sr > 1 else h * w
        embed = (shape[0],) if stride == 2 or shape[0] != d else ()
        return (*embed, d, n_kv, d, out, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import NextTransformerBlock

        args = (
            shape[0],
            out,
            int(p["stride"]),
            int(p["sr"]),
            int(p["head_dim"]),
            int(p["mhsa_out"]),
            int(p["hidden"]),
        )
        return LayerCall(NextTransformerBlock, args)


class CvTEmbed(BlockFamily):
    name = "cvt_embed"
    roles: ClassVar[frozenset[Role]] = frozenset({"stem", "downsample"})
    reference = "CvT convolutional token embedding (Wu et al., ICCV 2021), microsoft/CvT"
    params = (
        Param("kernel", int, 7, min=1, doc="kernel size"),
        Param("stride", int, 4, min=1, doc="stride"),
        Param(
            "padding",
            int,
            lambda out, p: (int(p["kernel"]) - int(p["stride"]) + 1) // 2,
            min=0,
            doc="default (kernel - stride + 1) // 2: 2 for 7/4, 1 for 3/2",
        ),
        Param("cls", bool, False, doc="add a class token: the output becomes a token sequence"),
    )

    def _geometry(self, shape: Shape, p: Mapping[str, Any]) -> tuple[int, int]:
        k, s, pad = int(p["kernel"]), int(p["stride"]), int(p["padding"])
        return conv_out(shape[1], k, s, pad), conv_out(shape[2], k, s, pad)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        if min(self._geometry(shape, p)) < 1:
            return f"input {shape[1]}x{shape[2]} is too small for this embedding"
        return super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        h, w = self._geometry(shape, p)
        return (out, h * w + 1, 1) if p["cls"] else (out, h, w)

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        h, w = self._geometry(shape, p)
        conv = conv_cost(shape[0], out, int(p["kernel"]), h, w, bias=True)
        return conv + Cost(2 * out + (out if p["cls"] else 0))

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return (shape[0] * int(p["kernel"]) ** 2,)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import CvTEmbed

        args = (shape[0], out, int(p["kernel"]), int(p["stride"]), int(p["padding"]))
        return LayerCall(CvTEmbed, (*args, bool(p["cls"])))


class CvT(BlockFamily):
    name = "cvt"
    attention = True
    width_keeping = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "CvT block (Wu et al., ICCV 2021), microsoft/CvT"
    params = (
        Param("heads", int, min=1, doc="attention heads (must divide the width)"),
        Param("hidden", int, times(4), min=1, doc="MLP hidden width"),
        Param("kernel", int, 3, min=1, doc="depthwise projection kernel (odd)"),
        Param("stride_kv", int, 2, min=1, doc="stride of the key/value projections"),
        Param("cls", bool, False, doc="the input is a token sequence with a class token first"),
        Param("qkv_bias", bool, True, doc="biases of the q/k/v linear projections"),
    )
    aliases = (MLP_RATIO,)

    def _map(self, shape: Shape, p: Mapping[str, Any]) -> tuple[int, int]:
        if p["cls"]:
            return token_grid(shape, cls=True) or (0, 0)
        return shape[1], shape[2]

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        reason = keeps_width(shape, out, self.name) or odd_kernel(p)
        reason = reason or heads_divide(out, int(p["heads"]))
        if reason:
            return reason
        if p["cls"] and (shape[2] != 1 or token_grid(shape, cls=True) is None):
            return (
                f"cls=true needs a token sequence (C, 1 + side^2, 1) after a cvt_embed with "
                f"cls; got {shape}"
            )
        return super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c = shape[0]
        h, w = self._map(shape, p)
        k, s, cls = int(p["kernel"]), int(p["stride_kv"]), int(bool(p["cls"]))
        hk, wk = conv_out(h, k, s, k // 2), conv_out(w, k, s, k // 2)
        t_q, t_kv = h * w + cls, hk * wk + cls
        heads, hid, bias = int(p["heads"]), int(p["hidden"]), bool(p["qkv_bias"])
        return (
            Cost(4 * c + 6 * c)  # two LayerNorms, three BNs of the projections
            + conv_cost(c, c, k, h, w, groups=c)
            + conv_cost(c, c, k, hk, wk, groups=c) * 2
            + linear_cost(c, c, t_q, bias=bias)
            + linear_cost(c, c, t_kv, bias=bias) * 2
            + Cost(0, 2 * t_q * t_kv * c, heads * t_q * t_kv + t_q * c)
            + linear_cost(c, c, t_q)
            + linear_cost(c, hid, t_q)
            + linear_cost(hid, c, t_q)
        )

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        c = shape[0]
        h, w = self._map(shape, p)
        k, s = int(p["kernel"]), int(p["stride_kv"])
        t_kv = conv_out(h, k, s, k // 2) * conv_out(w, k, s, k // 2) + int(bool(p["cls"]))
        return (k * k, c, t_kv, c, c, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import CvTBlock

        args = (out, int(p["heads"]), int(p["hidden"]), int(p["kernel"]), int(p["stride_kv"]))
        kwargs = {"cls": bool(p["cls"]), "qkv_bias": bool(p["qkv_bias"])}
        return LayerCall(CvTBlock, args, kwargs)
