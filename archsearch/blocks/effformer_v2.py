"""EfficientFormerV2's families (Li et al., ICCV 2023; snap-research/EfficientFormer, timm
``efficientformer_v2``). Every conv is biased and followed by BatchNorm; GELU.

* ``effv2_ffn``: the feed-forward block: 1x1 conv to ``hidden``, 3x3 depthwise conv (each with
  BN and GELU), 1x1 conv back with BN, layer scale, residual.
* ``effv2_attn``: the attention block: multi-head attention on the map ("4D"): queries and keys
  of ``key_dim`` and values of ``attn_ratio * key_dim`` per head from 1x1 convs, a 3x3 depthwise
  conv of the values added to the output (local values), a learned bias per head and per
  (|dy|, |dx|) offset, talking heads (a 1x1 conv across heads) before and after the softmax,
  GELU and a 1x1 projection; with ``stride: 2`` the attention runs on the map reduced by a
  strided 3x3 depthwise conv and is upsampled (bilinear) back. Layer scale, residual, then the
  feed-forward block (``hidden``) as in ``effv2_ffn``.
* ``effv2_down``: the downsample: a 3x3 stride-2 conv with BN, plus (``attn``) attention whose
  queries come from the half-resolution map (a strided 3x3 depthwise conv plus subsampling,
  then a 1x1 conv) over the full-resolution keys and values, with strided local values.
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
    WidthKeepingFamily,
    conv_cost,
    conv_out,
    times,
)
from archsearch.blocks.token_mixers import MLP_RATIO


def _cbn(c_in: int, c_out: int, k: int, h: int, w: int, groups: int = 1) -> Cost:
    """A biased conv with BN producing ``c_out x h x w``."""
    return conv_cost(c_in, c_out, k, h, w, groups=groups, bias=True) + Cost(2 * c_out)


def ffn_cost(c: int, hid: int, h: int, w: int, layer_scale: bool) -> Cost:
    return (
        _cbn(c, hid, 1, h, w)
        + _cbn(hid, hid, 3, h, w, groups=hid)
        + _cbn(hid, c, 1, h, w)
        + Cost(c if layer_scale else 0)
    )


def _half(n: int) -> int:
    return math.ceil(n / 2)


class EffV2FFN(WidthKeepingFamily):
    name = "effv2_ffn"
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "EfficientFormerV2 FFN (Li et al., ICCV 2023), snap-research/EfficientFormer"
    params = (
        Param("hidden", int, times(4), min=1, doc="hidden width"),
        Param("layer_scale", bool, True, doc="learnable per-channel scale of the branch"),
    )
    aliases = (MLP_RATIO,)

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        return ffn_cost(c, int(p["hidden"]), h, w, bool(p["layer_scale"]))

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return (shape[0], 9, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import EffV2FFN as FFNModule

        kwargs = {"layer_scale": bool(p["layer_scale"])}
        return LayerCall(FFNModule, (out, int(p["hidden"])), kwargs)


class EffV2Attn(WidthKeepingFamily):
    name = "effv2_attn"
    attention = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "EfficientFormerV2 attention block (Li et al., ICCV 2023)"
    params = (
        Param("heads", int, 8, min=1, doc="attention heads"),
        Param("key_dim", int, 32, min=1, doc="query/key width per head"),
        Param("attn_ratio", int, 4, min=1, doc="value width per head / key_dim"),
        Param("stride", int, 1, choices=(1, 2), doc="2: attend on the map halved, upsample"),
        Param("hidden", int, times(4), min=1, doc="feed-forward hidden width"),
        Param("layer_scale", bool, True, doc="learnable per-channel scales of both branches"),
    )
    aliases = (MLP_RATIO,)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        reason = super().check(shape, out, p)
        if reason:
            return reason
        if int(p["stride"]) == 2 and (shape[1] % 2 or shape[2] % 2):
            return (
                f"stride=2 upsamples the halved map back by 2: it needs even sides, the input "
                f"is {shape[1]}x{shape[2]}; use stride 1"
            )
        return None

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        heads, kd, s = int(p["heads"]), int(p["key_dim"]), int(p["stride"])
        dh = heads * int(p["attn_ratio"]) * kd
        ls = bool(p["layer_scale"])
        total = Cost()
        if s == 2:
            total += _cbn(c, c, 3, _half(h), _half(w), groups=c)
            h2, w2 = _half(h), _half(w)
        else:
            h2, w2 = h, w
        n = h2 * w2
        total += (
            _cbn(c, heads * kd, 1, h2, w2) * 2  # q, k
            + _cbn(c, dh, 1, h2, w2)  # v
            + _cbn(dh, dh, 3, h2, w2, groups=dh)  # local values
            + Cost(heads * n, heads * n * n * kd, heads * n * n)  # biases, QK^T
            + conv_cost(heads, heads, 1, n, n, bias=True) * 2  # talking heads
            + Cost(0, n * n * dh, n * dh)  # AV
            + _cbn(dh, c, 1, h, w)  # projection, at full resolution
            + Cost(c if ls else 0)
        )
        return total + ffn_cost(c, int(p["hidden"]), h, w, ls)

    def buffers(self, shape: Shape, out: int, p: Mapping[str, Any]) -> int:
        s = int(p["stride"])
        n = (_half(shape[1]) * _half(shape[2])) if s == 2 else shape[1] * shape[2]
        return n * n  # the bias index

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        c, h, w = shape
        s = int(p["stride"])
        n = (_half(h) * _half(w)) if s == 2 else h * w
        dh = int(p["heads"]) * int(p["attn_ratio"]) * int(p["key_dim"])
        return (c, n, dh, c, 9, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import EffV2AttnBlock

        args = (out, int(p["heads"]), int(p["key_dim"]), int(p["attn_ratio"]))
        kwargs = {
            "stride": int(p["stride"]),
            "hidden": int(p["hidden"]),
            "hw": (shape[1], shape[2]),
            "layer_scale": bool(p["layer_scale"]),
        }
        return LayerCall(EffV2AttnBlock, args, kwargs)


class EffV2Down(BlockFamily):
    name = "effv2_down"
    roles: ClassVar[frozenset[Role]] = frozenset({"downsample"})
    reference = "EfficientFormerV2 Downsample and Attention4DDownsample (Li et al., ICCV 2023)"
    params = (
        Param("attn", bool, False, doc="add attention with half-resolution queries"),
        Param("heads", int, 8, min=1, doc="attention heads"),
        Param("key_dim", int, 16, min=1, doc="query/key width per head"),
        Param("attn_ratio", int, 4, min=1, doc="value width per head / key_dim"),
    )

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return out, conv_out(shape[1], 3, 2, 1), conv_out(shape[2], 3, 2, 1)

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        _, h2, w2 = self.out_shape(shape, out, p)
        total = _cbn(c, out, 3, h2, w2)
        if not p["attn"]:
            return total
        heads, kd = int(p["heads"]), int(p["key_dim"])
        dh = heads * int(p["attn_ratio"]) * kd
        n, n2 = h * w, h2 * w2
        return (
            total
            + conv_cost(c, c, 3, h2, w2, groups=c, bias=True)  # local queries (no BN)
            + _cbn(c, heads * kd, 1, h2, w2)  # q
            + _cbn(c, heads * kd, 1, h, w)  # k
            + _cbn(c, dh, 1, h, w)  # v
            + _cbn(dh, dh, 3, h2, w2, groups=dh)  # strided local values
            + Cost(heads * n, heads * n2 * n * kd, heads * n2 * n)  # biases, QK^T
            + Cost(0, n2 * n * dh, n2 * dh)  # AV
            + _cbn(dh, out, 1, h2, w2)
        )

    def buffers(self, shape: Shape, out: int, p: Mapping[str, Any]) -> int:
        if not p["attn"]:
            return 0
        _, h2, w2 = self.out_shape(shape, out, p)
        return h2 * w2 * shape[1] * shape[2]  # the bias index, queries x keys

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return (shape[0] * 9,)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import EffV2Down as DownModule

        kwargs: dict[str, Any] = {"hw": (shape[1], shape[2])}
        if p["attn"]:
            kwargs.update(
                heads=int(p["heads"]), key_dim=int(p["key_dim"]), attn_ratio=int(p["attn_ratio"])
            )
        return LayerCall(DownModule, (shape[0], out), kwargs)
