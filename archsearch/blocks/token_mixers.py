"""MetaFormer blocks: pooling and attention token mixers followed by an MLP.

* ``pool``: PoolFormer's block, ``avgpool(x) - x`` as token mixer and a 1x1-conv MLP, with
  GroupNorm(1) pre-norms (``norm: gn``, Yu et al., CVPR 2022) or, as EfficientFormer's Meta4D
  (``norm: bn``, Li et al., NeurIPS 2022), no pre-norm and BatchNorm after each MLP conv.
* ``mhsa``: a pre-norm transformer block (LayerNorm, multi-head self-attention, LayerNorm,
  MLP with GELU), as ViT/DeiT's (Dosovitskiy et al. 2021; Touvron et al. 2021).
* ``sr_mhsa``: PVT's spatial-reduction attention block: keys and values from the map reduced
  by a ``sr x sr`` stride-``sr`` conv and LayerNorm (or, with ``linear``, PVTv2-li's 7x7
  average pool, 1x1 conv, LayerNorm and GELU, with a ReLU added in the MLP); with
  ``mlp_dwconv`` a 3x3 depthwise conv inside the MLP as in PVTv2 (Wang et al., ICCV 2021 and
  CVMJ 2022).

Attention blocks take and return NCHW maps; they flatten to tokens inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archsearch.blocks.base import (
    Alias,
    BlockFamily,
    Cost,
    LayerCall,
    Param,
    Role,
    Shape,
    conv_cost,
    group_norm_fits,
    heads_divide,
    keeps_width,
    linear_cost,
    odd_kernel,
    ratio_of,
    times,
)

MLP_RATIO = Alias("mlp_ratio", "hidden", lambda cin, cout, r: ratio_of(cout, r), "hidden/width")
HEAD_DIM = Alias("head_dim", "heads", lambda cin, cout, d: max(1, cout // int(d)), "width/heads")


class Pool(BlockFamily):
    name = "pool"
    width_keeping = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "PoolFormer (Yu et al., CVPR 2022); EfficientFormer Meta4D (Li et al., 2022)"
    params = (
        Param("pool_size", int, 3, min=1, doc="average-pool window (odd, stride 1)"),
        Param("hidden", int, times(4), min=1, doc="MLP hidden width"),
        Param(
            "norm",
            str,
            "gn",
            choices=("gn", "bn"),
            doc="gn: PoolFormer pre-norms; bn: EfficientFormer Meta4D, BN inside the MLP",
        ),
        Param("layer_scale", bool, True, doc="learnable per-channel scales of both branches"),
    )
    aliases = (MLP_RATIO,)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return (
            group_norm_fits(str(p["norm"]), shape)
            or keeps_width(shape, out, self.name)
            or odd_kernel(p, "pool_size")
            or super().check(shape, out, p)
        )

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        hid = int(p["hidden"])
        norms = 4 * c if p["norm"] == "gn" else 2 * hid + 2 * c
        return (
            conv_cost(c, hid, 1, h, w, bias=True)
            + conv_cost(hid, c, 1, h, w, bias=True)
            + Cost(norms + (2 * c if p["layer_scale"] else 0))
        )

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        # Design choice: the pooling mixer counts as a depthwise pool_size^2 layer.
        k = int(p["pool_size"])
        return (k * k, shape[0], int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import poolformer_block

        kwargs = {
            "hidden": int(p["hidden"]),
            "pool_size": int(p["pool_size"]),
            "norm": str(p["norm"]),
            "layer_scale": bool(p["layer_scale"]),
        }
        return LayerCall(poolformer_block, (shape[0],), kwargs)


class _AttentionFamily(BlockFamily):
    """Transformer blocks: shared checks, cost, entropy layers and builder.

    ``sr`` (absent: 0) selects the attention: 0 is ViT's fused-qkv MHSA, >= 1 PVT's separate q
    and kv projections with keys/values from a map reduced ``sr`` times (1: not reduced). Both
    have the same parameters and MACs when nothing is reduced.
    """

    attention = True

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        reason = keeps_width(shape, out, self.name) or heads_divide(out, int(p["heads"]))
        return reason or super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape

    @staticmethod
    def _kv_tokens(shape: Shape, sr: int, linear: bool = False) -> int:
        _, h, w = shape
        if linear:
            return 7 * 7  # adaptive pooling to 7x7
        return (h // sr) * (w // sr) if sr > 1 else h * w

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        sr, hid, heads = int(p.get("sr", 0)), int(p["hidden"]), int(p["heads"])
        linear = bool(p.get("linear", False))
        n, n_kv = h * w, self._kv_tokens(shape, sr, linear)
        total = Cost(4 * c + (2 * c if p["layer_scale"] else 0))
        if linear:
            total += conv_cost(c, c, 1, 7, 7, bias=True) + Cost(2 * c)
        elif sr > 1:
            total += conv_cost(c, c, sr, h // sr, w // sr, bias=True) + Cost(2 * c)
        # q, k, v projections (fused or not, the same count), then QK^T and AV: n*n_kv*c
        # MACs each, with outputs of heads*n*n_kv and n*c elements.
        total += (
            linear_cost(c, c, n, bias=bool(p["qkv_bias"]))
            + linear_cost(c, 2 * c, n_kv, bias=bool(p["qkv_bias"]))
            + Cost(0, 2 * n * n_kv * c, heads * n * n_kv + n * c)
            + linear_cost(c, c, n)
            + linear_cost(c, hid, n)
            + linear_cost(hid, c, n)
        )
        if p.get("mlp_dwconv", False):
            total += conv_cost(hid, hid, 3, h, w, groups=hid, bias=True)
        return total

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        # Design choice: attention counts as one layer whose fan-in is the number of keys,
        # like a depthwise conv whose window covers the map. PVT's reduction conv feeds
        # keys/values only; like squeeze-excite it is off the main path.
        c = shape[0]
        n_kv = self._kv_tokens(shape, int(p.get("sr", 0)), bool(p.get("linear", False)))
        hid = int(p["hidden"])
        mlp = (c, 9, hid) if p.get("mlp_dwconv", False) else (c, hid)
        return (c, n_kv, c, *mlp)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import TransformerBlock

        kwargs = {
            "qkv_bias": bool(p["qkv_bias"]),
            "sr": int(p.get("sr", 0)),
            "linear": bool(p.get("linear", False)),
            "mlp_dwconv": bool(p.get("mlp_dwconv", False)),
            "layer_scale": bool(p["layer_scale"]),
        }
        return LayerCall(TransformerBlock, (out, int(p["heads"]), int(p["hidden"])), kwargs)


class MHSA(_AttentionFamily):
    name = "mhsa"
    width_keeping = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "ViT (Dosovitskiy et al., ICLR 2021); DeiT (Touvron et al., ICML 2021)"
    params = (
        Param("heads", int, min=1, doc="attention heads (must divide the width)"),
        Param("hidden", int, times(4), min=1, doc="MLP hidden width"),
        Param("qkv_bias", bool, True, doc="biases of the q/k/v projection"),
        Param("layer_scale", bool, False, doc="learnable per-channel scales of both branches"),
    )
    aliases = (MLP_RATIO, HEAD_DIM)


class SRMHSA(_AttentionFamily):
    name = "sr_mhsa"
    width_keeping = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "PVT (Wang et al., ICCV 2021); PVTv2 (Wang et al., CVMJ 2022)"
    params = (
        Param("heads", int, min=1, doc="attention heads (must divide the width)"),
        Param("sr", int, 1, min=1, doc="spatial-reduction ratio of keys/values"),
        Param(
            "linear",
            bool,
            False,
            doc="PVTv2-li linear reduction (7x7 pool, 1x1 conv, LN, GELU) instead of the sr conv",
        ),
        Param("hidden", int, times(4), min=1, doc="MLP hidden width"),
        Param("qkv_bias", bool, True, doc="biases of the q and kv projections"),
        Param("mlp_dwconv", bool, False, doc="3x3 depthwise conv inside the MLP (PVTv2)"),
        Param("layer_scale", bool, False, doc="learnable per-channel scales of both branches"),
    )
    aliases = (MLP_RATIO, HEAD_DIM)

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        sr = int(p["sr"])
        if p["linear"] and sr != 1:
            return f"linear reduction pools to 7x7 whatever sr; set sr: 1, not {sr}"
        if sr > min(shape[1], shape[2]):
            return f"sr={sr} is larger than the {shape[1]}x{shape[2]} map"
        return super().check(shape, out, p)
