"""Residual convolutional blocks.

* ``convnext``: depthwise kxk conv, LayerNorm, MLP with GELU, layer scale, residual
  (ConvNeXt, Liu et al., CVPR 2022).
* ``mbconv``: inverted residual: 1x1 expansion, kxk depthwise (optionally strided),
  squeeze-excite, 1x1 projection; identity residual when the shape is kept
  (MobileNetV2, Sandler et al. 2018; EfficientNet, Tan & Le 2019; DeepMAD's ResK1DWSEK1).
* ``bottleneck``: ResNet's 1x1-kxk-1x1 bottleneck with the stride in the kxk conv (ResNet
  v1.5) and a 1x1 projection shortcut when the shape changes (He et al., CVPR 2016; DeepMAD's
  ResK1KXK1 uses the ``avgpool`` shortcut: 2x2 average pool, then the projection).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from archsearch.blocks.base import (
    ACTIVATIONS,
    Alias,
    BlockFamily,
    Cost,
    LayerCall,
    Param,
    Role,
    Shape,
    conv_cost,
    conv_out,
    keeps_width,
    linear_cost,
    odd_kernel,
    ratio_of,
    times,
)


class ConvNeXt(BlockFamily):
    name = "convnext"
    width_keeping = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "ConvNeXt (Liu et al., CVPR 2022), facebookresearch/ConvNeXt Block"
    params = (
        Param("kernel", int, 7, min=1, doc="depthwise kernel size (odd)"),
        Param("hidden", int, times(4), min=1, doc="MLP hidden width"),
        Param("layer_scale", bool, True, doc="learnable per-channel scale of the branch"),
    )
    aliases = (
        Alias("mlp_ratio", "hidden", lambda cin, cout, r: ratio_of(cout, r), "hidden/width"),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return keeps_width(shape, out, self.name) or odd_kernel(p) or super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        n, hid = h * w, int(p["hidden"])
        return (
            conv_cost(c, c, int(p["kernel"]), h, w, groups=c, bias=True)
            + linear_cost(c, hid, n)
            + linear_cost(hid, c, n)
            + Cost(2 * c + (c if p["layer_scale"] else 0))
        )

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        k = int(p["kernel"])
        return (k * k, shape[0], int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import ConvNeXtBlock

        kwargs = {"layer_scale": bool(p["layer_scale"])}
        return LayerCall(ConvNeXtBlock, (out, int(p["kernel"]), int(p["hidden"])), kwargs)


class MBConv(BlockFamily):
    name = "mbconv"
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "MobileNetV2 (Sandler et al., 2018), EfficientNet (Tan & Le, 2019), timm"
    params = (
        Param("hidden", int, min=1, doc="expanded width (in_channels x expand ratio)"),
        Param("kernel", int, 3, min=1, doc="depthwise kernel size (odd)"),
        Param("stride", int, 1, choices=(1, 2), doc="depthwise stride"),
        Param("se", int, 0, min=0, doc="squeeze-excite width, 0 for none"),
        Param(
            "act",
            str,
            "silu",
            choices=ACTIVATIONS,
            doc="activation",
        ),
        Param("final_act", bool, False, doc="activation after the residual sum (TinyViT)"),
    )
    aliases = (
        Alias("expand", "hidden", lambda cin, cout, r: ratio_of(cin, r), "hidden/in_channels"),
        Alias(
            "se_ratio",
            "se",
            lambda cin, cout, r: ratio_of(cin, r) if r > 0 else 0,
            "squeeze width/in_channels, 0 for none",
        ),
        Alias(
            "se_hidden_ratio",
            "se",
            lambda hidden, cout, r: max(8, 8 * int(hidden * r // 8)) if r > 0 else 0,
            "squeeze width/hidden, floored to a multiple of 8 (TinyNAS), 0 for none",
            of="hidden",
        ),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return odd_kernel(p) or super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        k, s = int(p["kernel"]), int(p["stride"])
        return out, conv_out(shape[1], k, s, k // 2), conv_out(shape[2], k, s, k // 2)

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        hid, se, k = int(p["hidden"]), int(p["se"]), int(p["kernel"])
        _, ho, wo = self.out_shape(shape, out, p)
        total = (
            conv_cost(c, hid, 1, h, w)
            + conv_cost(hid, hid, k, ho, wo, groups=hid)
            + conv_cost(hid, out, 1, ho, wo)
            + Cost(4 * hid + 2 * out)
        )
        if se:
            total += conv_cost(hid, se, 1, 1, 1, bias=True) + conv_cost(
                se, hid, 1, 1, 1, bias=True
            )
        return total

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        k = int(p["kernel"])
        return (shape[0], k * k, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import mbconv

        kwargs = {
            "hidden": int(p["hidden"]),
            "kernel": int(p["kernel"]),
            "stride": int(p["stride"]),
            "se": int(p["se"]),
            "act": str(p["act"]),
            "final_act": bool(p["final_act"]),
        }
        return LayerCall(mbconv, (shape[0], out), kwargs)


class Bottleneck(BlockFamily):
    name = "bottleneck"
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "ResNet (He et al., CVPR 2016), v1.5 stride placement; DeepMAD ResK1KXK1"
    params = (
        Param("hidden", int, min=1, doc="bottleneck width"),
        Param("kernel", int, 3, min=1, doc="middle conv kernel size (odd)"),
        Param("stride", int, 1, choices=(1, 2), doc="stride of the middle conv"),
        Param(
            "shortcut",
            str,
            "conv",
            choices=("conv", "avgpool"),
            doc="conv: strided 1x1 projection; avgpool: 2x2 average pool then 1x1 projection",
        ),
    )
    aliases = (
        Alias("btn_ratio", "hidden", lambda cin, cout, r: ratio_of(cout, r), "hidden/width"),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return odd_kernel(p) or super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        k, s = int(p["kernel"]), int(p["stride"])
        return out, conv_out(shape[1], k, s, k // 2), conv_out(shape[2], k, s, k // 2)

    def _projects(self, shape: Shape, out: int, p: Mapping[str, Any]) -> bool:
        if p["shortcut"] == "avgpool":
            return shape[0] != out
        return shape[0] != out or int(p["stride"]) != 1

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        hid, k = int(p["hidden"]), int(p["kernel"])
        _, ho, wo = self.out_shape(shape, out, p)
        total = (
            conv_cost(c, hid, 1, h, w)
            + conv_cost(hid, hid, k, ho, wo)
            + conv_cost(hid, out, 1, ho, wo)
            + Cost(4 * hid + 2 * out)
        )
        if self._projects(shape, out, p):
            total += conv_cost(c, out, 1, ho, wo) + Cost(2 * out)
        return total

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        k, hid = int(p["kernel"]), int(p["hidden"])
        return (shape[0], hid * k * k, hid)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import bottleneck

        if p["shortcut"] == "avgpool":
            shortcut = "avgpool"
        else:
            shortcut = "conv" if self._projects(shape, out, p) else "identity"
        kwargs = {
            "hidden": int(p["hidden"]),
            "kernel": int(p["kernel"]),
            "stride": int(p["stride"]),
            "shortcut": shortcut,
        }
        return LayerCall(bottleneck, (shape[0], out), kwargs)
