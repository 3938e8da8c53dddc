"""Classification heads.

``head``: an optional 1x1 conv with BN and activation (as DeepMAD's and MobileNet's final
``ConvKXBNRELU``), an optional norm of the map or token sequence before pooling
(EfficientFormer's LayerNorm, PoolFormer's GroupNorm, Next-ViT's BatchNorm), pooling (global
average, or the class token of a sequence as in DeiT and CvT), an optional norm of the pooled
features (ConvNeXt, TinyViT), an optional biased 1x1 conv and activation on the pooled features
(MobileNetV3's ``conv_head``), and a linear classifier; with ``aux`` a token-labelling
classifier on every token but the class token, whose per-class maximum is added at half weight
(VOLO); with ``distill`` a second classifier whose logits are averaged with the first
(DeiT/EfficientFormer distillation heads). Its ``out_channels`` is the number of classes.
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
    group_norm_fits,
    linear_cost,
    norm_params,
)


class Head(BlockFamily):
    name = "head"
    roles: ClassVar[frozenset[Role]] = frozenset({"head"})
    reference = (
        "ConvNeXt, DeepMAD, EfficientFormer, DeiT classification heads; MobileNetV3's conv "
        "head; VOLO's token-labelling head"
    )
    params = (
        Param("hidden", int, 0, min=0, doc="width of a 1x1 conv before pooling, 0 for none"),
        Param(
            "act",
            str,
            "relu",
            choices=ACTIVATIONS,
            doc="activation after the conv before pooling and the one after (post_hidden)",
        ),
        Param("prenorm", str, "none", choices=("none", "ln", "bn", "gn"), doc="norm before pool"),
        Param("pool", str, "avg", choices=("avg", "cls"), doc="global average or class token"),
        Param("norm", str, "ln", choices=("ln", "bn", "none"), doc="norm of pooled features"),
        Param("distill", bool, False, doc="second (distillation) classifier, logits averaged"),
        Param(
            "post_hidden",
            int,
            0,
            min=0,
            doc="width of a biased 1x1 conv (no norm) and act after pooling (MobileNetV3), 0 "
            "for none",
            elide_default=True,
        ),
        Param(
            "aux",
            bool,
            False,
            doc="token-labelling head (VOLO, LV-ViT; needs pool: cls): a classifier on every "
            "other token, each class's maximum over tokens added at half weight",
            elide_default=True,
        ),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        width = int(p["hidden"]) or shape[0]
        reason = group_norm_fits(str(p["prenorm"]), (width, shape[1], shape[2]))
        if reason:
            return reason
        if p["aux"] and (p["pool"] != "cls" or shape[1] < 2):
            return "aux=true scores the tokens beside the class token: it needs pool: cls"
        if p["pool"] == "cls" and shape[2] != 1:
            return (
                f"pool=cls needs a token sequence (C, tokens, 1) with a class token first; the "
                f"input is a {shape[1]}x{shape[2]} map"
            )
        return super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return out, 1, 1

    def feature_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return int(p["hidden"]) or shape[0], shape[1], shape[2]

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        hid = int(p["hidden"])
        total = Cost()
        act = act_params(str(p["act"]))
        if hid:
            total += conv_cost(c, hid, 1, h, w) + Cost(2 * hid + act)
        width = hid or c
        total += Cost(norm_params(width, str(p["prenorm"])) + norm_params(width, str(p["norm"])))
        if p["aux"]:
            total += linear_cost(width, out, h * w - 1)
        post = int(p["post_hidden"])
        if post:
            total += linear_cost(width, post, 1) + Cost(act)
            width = post
        return total + linear_cost(width, out, 1) * (2 if p["distill"] else 1)

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        # DeepMAD counts the final 1x1 conv in the last stage and ignores the classifier.
        return (shape[0],) if int(p["hidden"]) else ()

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import Head as HeadModule

        kwargs = {
            "hidden": int(p["hidden"]),
            "act": str(p["act"]),
            "prenorm": str(p["prenorm"]),
            "pool": str(p["pool"]),
            "norm": str(p["norm"]),
            "distill": bool(p["distill"]),
        }
        if p["post_hidden"]:  # at its default it stays out of the call, as before the option
            kwargs["post_hidden"] = int(p["post_hidden"])
        if p["aux"]:
            kwargs["aux"] = True
        return LayerCall(HeadModule, (shape[0], out), kwargs)
