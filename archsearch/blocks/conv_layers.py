"""Single-convolution families: plain conv layers, stems, patch embeddings and downsamples.

* ``conv_bn_act``: a kxk convolution, norm, activation (DeepMAD's ``ConvKXBNRELU`` stem).
* ``conv_stem``: two 3x3 stride-2 convolutions with BN and activation, the first to half the
  width (EfficientFormer, Li et al. 2022; TinyViT, Wu et al. 2022).
* ``patchify``: a ``p x p`` stride-``p`` convolution and LayerNorm (ConvNeXt, Liu et al. 2022;
  ViT's patch embedding with ``norm: none``).
* ``overlap_patch``: PVTv2's overlapping patch embedding, a kxk stride-s convolution with
  padding ``k // 2`` and LayerNorm (Wang et al. 2022).
* ``conv_down``: a 3x3 stride-2 convolution and norm between stages (EfficientFormer).
* ``patch_merge``: LayerNorm then a 2x2 stride-2 convolution (ConvNeXt's downsample).
* ``resnet_stem``: ResNet's 7x7 stride-2 conv, BN, ReLU and 3x3 stride-2 max pool.
"""

from __future__ import annotations

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
    norm_params,
    odd_kernel,
)

ACTS = (*ACTIVATIONS, "none")
NORMS = ("bn", "ln", "gn", "none")
NORM_BIAS = Param(
    "norm_bias",
    bool,
    True,
    doc="the LayerNorm's bias (false: scale only, as implementations without norm biases)",
    elide_default=True,
)


class _ConvNorm(BlockFamily):
    """One convolution followed by a norm (and an activation); subclasses fix the geometry."""

    norm_first: ClassVar[bool] = False

    def geometry(self, p: Mapping[str, Any]) -> tuple[int, int, int]:
        """``(kernel, stride, padding)`` of the convolution."""
        k = int(p["kernel"])
        return k, int(p["stride"]), k // 2

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        k, s, pad = self.geometry(p)
        if conv_out(min(shape[1], shape[2]), k, s, pad) < 1:
            return f"input {shape[1]}x{shape[2]} is too small for a {k}x{k} stride-{s} conv"
        if not p["norm_bias"] and p["norm"] != "ln":
            return f"norm_bias=false drops a LayerNorm's bias: it needs norm: ln, not {p['norm']}"
        normed = shape if self.norm_first else self.out_shape(shape, out, p)
        return group_norm_fits(str(p["norm"]), normed) or super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        k, s, pad = self.geometry(p)
        return out, conv_out(shape[1], k, s, pad), conv_out(shape[2], k, s, pad)

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        k, _, _ = self.geometry(p)
        _, h, w = self.out_shape(shape, out, p)
        c = conv_cost(shape[0], out, k, h, w, bias=bool(p["bias"]))
        norm_width = shape[0] if self.norm_first else out
        act = act_params(str(p.get("act", "none")))
        norm = norm_params(norm_width, str(p["norm"])) - (0 if p["norm_bias"] else norm_width)
        return c + Cost(norm + act)

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        k = self.geometry(p)[0]
        return (shape[0] * k * k,)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import conv_norm

        k, s, pad = self.geometry(p)
        kwargs: dict[str, Any] = {"bias": bool(p["bias"]), "norm": str(p["norm"])}
        if not p["norm_bias"]:
            kwargs["norm_bias"] = False
        if self.norm_first:
            kwargs["norm_first"] = True
        elif "act" in p:
            kwargs["act"] = str(p["act"])
        return LayerCall(conv_norm, (shape[0], out, k, s, pad), kwargs)


class ConvBnAct(_ConvNorm):
    name = "conv_bn_act"
    roles: ClassVar[frozenset[Role]] = frozenset({"stem", "block", "downsample"})
    reference = "DeepMAD (Shen et al., CVPR 2023), TinyNAS ConvKXBNRELU"
    params = (
        Param("kernel", int, 3, min=1, doc="kernel size (odd)"),
        Param("stride", int, 1, choices=(1, 2, 4), doc="stride"),
        Param("norm", str, "bn", choices=NORMS, doc="normalisation after the conv"),
        Param("act", str, "relu", choices=ACTS, doc="activation"),
        Param("bias", bool, False, doc="conv bias"),
        NORM_BIAS,
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return odd_kernel(p) or super().check(shape, out, p)


class ConvStem(BlockFamily):
    name = "conv_stem"
    roles: ClassVar[frozenset[Role]] = frozenset({"stem"})
    reference = "EfficientFormer (Li et al., NeurIPS 2022); TinyViT (Wu et al., ECCV 2022)"
    params = (
        Param("act", str, "relu", choices=ACTS, doc="activation after each conv"),
        Param("bias", bool, False, doc="conv biases"),
        Param("final_act", bool, True, doc="activation after the second conv"),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        if out < 2 or out % 2:
            return f"out_channels={out} must be even (the first conv has out_channels/2)"
        if min(shape[1], shape[2]) < 4:
            return f"input {shape[1]}x{shape[2]} is too small for two stride-2 convs"
        return super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        h = conv_out(conv_out(shape[1], 3, 2, 1), 3, 2, 1)
        w = conv_out(conv_out(shape[2], 3, 2, 1), 3, 2, 1)
        return out, h, w

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        mid, bias = out // 2, bool(p["bias"])
        h1, w1 = conv_out(shape[1], 3, 2, 1), conv_out(shape[2], 3, 2, 1)
        h2, w2 = conv_out(h1, 3, 2, 1), conv_out(w1, 3, 2, 1)
        return (
            conv_cost(shape[0], mid, 3, h1, w1, bias=bias)
            + conv_cost(mid, out, 3, h2, w2, bias=bias)
            + Cost(2 * mid + 2 * out + act_params(str(p["act"])) * (1 + int(bool(p["final_act"]))))
        )

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return (shape[0] * 9, out // 2 * 9)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import conv_stem

        kwargs = {"bias": bool(p["bias"]), "act": str(p["act"]), "final_act": bool(p["final_act"])}
        return LayerCall(conv_stem, (shape[0], out), kwargs)


class ResNetStem(BlockFamily):
    name = "resnet_stem"
    roles: ClassVar[frozenset[Role]] = frozenset({"stem"})
    reference = "ResNet (He et al., CVPR 2016): 7x7 stride-2 conv, BN, ReLU, 3x3 max pool"
    params = (
        Param("kernel", int, 7, min=1, doc="conv kernel (odd), stride 2"),
        Param("pool", bool, True, doc="3x3 stride-2 max pool after the conv"),
        Param("act", str, "relu", choices=ACTS, doc="activation"),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return odd_kernel(p) or super().check(shape, out, p)

    def _sizes(self, shape: Shape, p: Mapping[str, Any]) -> tuple[int, int, int, int]:
        k = int(p["kernel"])
        h, w = conv_out(shape[1], k, 2, k // 2), conv_out(shape[2], k, 2, k // 2)
        if p["pool"]:
            return h, w, conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
        return h, w, h, w

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        _, _, ho, wo = self._sizes(shape, p)
        return out, ho, wo

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        h, w, _, _ = self._sizes(shape, p)
        return conv_cost(shape[0], out, int(p["kernel"]), h, w) + Cost(
            2 * out + act_params(str(p["act"]))
        )

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return (shape[0] * int(p["kernel"]) ** 2,)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import resnet_stem

        kwargs = {"kernel": int(p["kernel"]), "pool": bool(p["pool"]), "act": str(p["act"])}
        return LayerCall(resnet_stem, (shape[0], out), kwargs)


class Patchify(_ConvNorm):
    name = "patchify"
    roles: ClassVar[frozenset[Role]] = frozenset({"stem", "downsample"})
    reference = "ConvNeXt (Liu et al., CVPR 2022); ViT (Dosovitskiy et al., ICLR 2021)"
    params = (
        Param("patch", int, 4, min=1, doc="patch size = kernel = stride"),
        Param("norm", str, "ln", choices=NORMS, doc="normalisation after the conv"),
        Param("bias", bool, True, doc="conv bias"),
        NORM_BIAS,
    )

    def geometry(self, p: Mapping[str, Any]) -> tuple[int, int, int]:
        k = int(p["patch"])
        return k, k, 0


class OverlapPatch(_ConvNorm):
    name = "overlap_patch"
    roles: ClassVar[frozenset[Role]] = frozenset({"stem", "downsample"})
    reference = "PVTv2 (Wang et al., CVMJ 2022), OverlapPatchEmbed; PoolFormer's PatchEmbed"
    params = (
        Param("kernel", int, 7, min=1, doc="kernel size"),
        Param("stride", int, 4, min=1, doc="stride"),
        Param(
            "padding", int, lambda out, p: int(p["kernel"]) // 2, min=0, doc="default kernel // 2"
        ),
        Param("norm", str, "ln", choices=NORMS, doc="normalisation after the conv"),
        Param("bias", bool, True, doc="conv bias"),
        NORM_BIAS,
    )

    def geometry(self, p: Mapping[str, Any]) -> tuple[int, int, int]:
        return int(p["kernel"]), int(p["stride"]), int(p["padding"])


class ConvDown(_ConvNorm):
    name = "conv_down"
    roles: ClassVar[frozenset[Role]] = frozenset({"downsample"})
    reference = "EfficientFormer (Li et al., NeurIPS 2022), Embedding"
    params = (
        Param("kernel", int, 3, choices=(3, 5), doc="kernel size (padding kernel // 2)"),
        Param("norm", str, "bn", choices=NORMS, doc="normalisation after the conv"),
        Param("bias", bool, True, doc="conv bias"),
        NORM_BIAS,
    )

    def geometry(self, p: Mapping[str, Any]) -> tuple[int, int, int]:
        k = int(p["kernel"])
        return k, 2, k // 2


class PatchMerge(_ConvNorm):
    name = "patch_merge"
    roles: ClassVar[frozenset[Role]] = frozenset({"downsample"})
    reference = "ConvNeXt (Liu et al., CVPR 2022), downsample layers"
    norm_first = True
    params = (
        Param("norm", str, "ln", choices=NORMS, doc="normalisation before the conv"),
        Param("bias", bool, True, doc="conv bias"),
        NORM_BIAS,
    )

    def geometry(self, p: Mapping[str, Any]) -> tuple[int, int, int]:
        return 2, 2, 0
