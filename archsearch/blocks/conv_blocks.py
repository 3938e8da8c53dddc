"""Residual convolutional blocks.

* ``convnext``: depthwise kxk conv, LayerNorm, MLP with GELU, layer scale, residual
  (ConvNeXt, Liu et al., CVPR 2022).
* ``mbconv``: inverted residual: 1x1 expansion (optional), kxk depthwise (optionally
  strided), squeeze-excite (sigmoid or hard-sigmoid gate), 1x1 projection; identity residual
  when the shape is kept (MobileNetV3, Howard et al. 2019, for the options)
  (MobileNetV2, Sandler et al. 2018; EfficientNet, Tan & Le 2019; DeepMAD's ResK1DWSEK1).
* ``bottleneck``: ResNet's 1x1-kxk-1x1 bottleneck with the stride in the kxk conv (ResNet
  v1.5) and a 1x1 projection shortcut when the shape changes (He et al., CVPR 2016; DeepMAD's
  ResK1KXK1 uses the ``avgpool`` shortcut: 2x2 average pool, then the projection); optionally
  a grouped kxk conv (ResNeXt) and squeeze-excite on the output before the sum (SE-ResNet).
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
    act_params,
    conv_cost,
    conv_out,
    group_norm_fits,
    keeps_width,
    linear_cost,
    norm_params,
    odd_kernel,
    ratio_of,
    se_cost,
    times,
)

_CONV_OPTIONS = (
    Param(
        "norm",
        str,
        "bn",
        choices=("bn", "ln", "gn", "none"),
        doc="norm after each conv: BatchNorm, LayerNorm over channels, GroupNorm, or none",
        elide_default=True,
    ),
    Param(
        "conv_bias",
        bool,
        False,
        doc="biases of the convs (implementations without norms often have them)",
        elide_default=True,
    ),
)
"""The norm and conv-bias options of the conv blocks (``mbconv``, ``bottleneck``)."""


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
        Param(
            "expand_conv",
            bool,
            True,
            doc="the 1x1 expansion conv; false: the depthwise conv takes the input directly "
            "(MobileNetV2/V3's and EfficientNet's first block; hidden must equal in_channels)",
            elide_default=True,
        ),
        Param(
            "se_act",
            str,
            "same",
            choices=("same", *ACTIVATIONS),
            doc="squeeze-excite activation: same as act, or another (MobileNetV3: relu)",
            elide_default=True,
        ),
        Param(
            "se_gate",
            str,
            "sigmoid",
            choices=("sigmoid", "hsigmoid"),
            doc="squeeze-excite gate: sigmoid, or MobileNetV3's hard sigmoid",
            elide_default=True,
        ),
        *_CONV_OPTIONS,
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
        if not p["expand_conv"] and int(p["hidden"]) != shape[0]:
            return (
                f"expand_conv=false needs hidden={p['hidden']} to equal in_channels={shape[0]} "
                "(without the expansion conv the depthwise conv takes the input)"
            )
        _, ho, wo = self.out_shape(shape, out, p)
        return (
            odd_kernel(p)
            or group_norm_fits(str(p["norm"]), (min(int(p["hidden"]), out), ho, wo))
            or super().check(shape, out, p)
        )

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        k, s = int(p["kernel"]), int(p["stride"])
        return out, conv_out(shape[1], k, s, k // 2), conv_out(shape[2], k, s, k // 2)

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        hid, se, k = int(p["hidden"]), int(p["se"]), int(p["kernel"])
        _, ho, wo = self.out_shape(shape, out, p)
        act = act_params(str(p["act"]))
        norm, bias = str(p["norm"]), bool(p["conv_bias"])
        total = (
            conv_cost(hid, hid, k, ho, wo, groups=hid, bias=bias)
            + conv_cost(hid, out, 1, ho, wo, bias=bias)
            + Cost(norm_params(hid, norm) + norm_params(out, norm))
            + Cost(act * (1 + int(bool(p["final_act"]))))
        )
        if p["expand_conv"]:
            total += conv_cost(c, hid, 1, h, w, bias=bias) + Cost(norm_params(hid, norm) + act)
        if se:
            se_act = str(p["act"] if p["se_act"] == "same" else p["se_act"])
            total += se_cost(hid, se) + Cost(act_params(se_act))
        return total

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        k = int(p["kernel"])
        if not p["expand_conv"]:
            return (k * k, int(p["hidden"]))
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
        # Options at their defaults stay out of the call (an exported file reads as before).
        if not p["expand_conv"]:
            kwargs["expand_conv"] = False
        if p["se"] and p["se_act"] != "same":
            kwargs["se_act"] = str(p["se_act"])
        if p["se"] and p["se_gate"] != "sigmoid":
            kwargs["se_gate"] = str(p["se_gate"])
        _conv_options(p, kwargs)
        return LayerCall(mbconv, (shape[0], out), kwargs)


class Bottleneck(BlockFamily):
    name = "bottleneck"
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = (
        "ResNet (He et al., CVPR 2016), v1.5 stride placement; ResNeXt (Xie et al., CVPR 2017); "
        "SE-ResNet (Hu et al., CVPR 2018); DeepMAD ResK1KXK1"
    )
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
        Param(
            "groups",
            int,
            1,
            min=1,
            doc="groups of the middle conv (ResNeXt's cardinality; must divide hidden)",
            elide_default=True,
        ),
        Param(
            "se",
            int,
            0,
            min=0,
            doc="squeeze-excite width on the output, before the sum (SE-ResNet), 0 for none",
            elide_default=True,
        ),
        *_CONV_OPTIONS,
    )
    aliases = (
        Alias("btn_ratio", "hidden", lambda cin, cout, r: ratio_of(cout, r), "hidden/width"),
        Alias(
            "se_ratio",
            "se",
            lambda cin, cout, r: ratio_of(cout, r) if r > 0 else 0,
            "squeeze width/out_channels (SE-ResNet: 1/16), 0 for none",
        ),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        if int(p["hidden"]) % int(p["groups"]):
            return (
                f"groups={p['groups']} must divide hidden={p['hidden']}; choose a divisor of the "
                "bottleneck width"
            )
        _, ho, wo = self.out_shape(shape, out, p)
        return (
            odd_kernel(p)
            or group_norm_fits(str(p["norm"]), (min(int(p["hidden"]), out), ho, wo))
            or super().check(shape, out, p)
        )

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        k, s = int(p["kernel"]), int(p["stride"])
        return out, conv_out(shape[1], k, s, k // 2), conv_out(shape[2], k, s, k // 2)

    def _projects(self, shape: Shape, out: int, p: Mapping[str, Any]) -> bool:
        if p["shortcut"] == "avgpool":
            return shape[0] != out
        return shape[0] != out or int(p["stride"]) != 1

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        hid, k, se = int(p["hidden"]), int(p["kernel"]), int(p["se"])
        _, ho, wo = self.out_shape(shape, out, p)
        norm, bias = str(p["norm"]), bool(p["conv_bias"])
        total = (
            conv_cost(c, hid, 1, h, w, bias=bias)
            + conv_cost(hid, hid, k, ho, wo, groups=int(p["groups"]), bias=bias)
            + conv_cost(hid, out, 1, ho, wo, bias=bias)
            + Cost(2 * norm_params(hid, norm) + norm_params(out, norm))
        )
        if se:
            total += se_cost(out, se)
        if self._projects(shape, out, p):
            total += conv_cost(c, out, 1, ho, wo, bias=bias) + Cost(norm_params(out, norm))
        return total

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        k, hid = int(p["kernel"]), int(p["hidden"])
        return (shape[0], hid * k * k / int(p["groups"]), hid)

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
            "groups": int(p["groups"]),
            "se": int(p["se"]),
        }
        _conv_options(p, kwargs)
        return LayerCall(bottleneck, (shape[0], out), kwargs)


def _conv_options(p: Mapping[str, Any], kwargs: dict[str, Any]) -> None:
    """The norm and conv-bias options, in the layer call only where not at their defaults
    (an exported file reads as before)."""
    if p["norm"] != "bn":
        kwargs["norm"] = str(p["norm"])
    if p["conv_bias"]:
        kwargs["conv_bias"] = True
