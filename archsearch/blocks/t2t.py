"""Tokens-to-Token ViT's families (Yuan et al., ICCV 2021; yitu-opensource/T2T-ViT).

* ``soft_split``: the soft split: every ``k x k`` patch (stride s, padding p) becomes one token
  whose features are the patch's ``C k^2`` values (``nn.Unfold``), laid out on the output grid;
  ``out_channels`` must be ``C k^2``. No parameters, no multiply-accumulates.
* ``t2t_performer``: the tokens-to-token layer with Performer attention (one head): LayerNorm,
  a linear to keys, queries and values of the output width, positive random features
  (``features`` fixed orthogonal projections, a buffer: not trained, not counted), linear
  attention, a projection added to the values (the layer's skip), then LayerNorm and a GELU MLP
  (residual). It changes the width from the input's to ``out_channels``.
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
    conv_out,
    linear_cost,
    times,
)


class SoftSplit(BlockFamily):
    name = "soft_split"
    roles: ClassVar[frozenset[Role]] = frozenset({"stem", "downsample", "block"})
    reference = "T2T-ViT soft split (Yuan et al., ICCV 2021)"
    params = (
        Param("kernel", int, 3, min=1, max=16, doc="patch side"),
        Param("stride", int, 2, min=1, max=16, doc="patch stride"),
        Param("padding", int, 1, min=0, max=8, doc="zero padding"),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        k = int(p["kernel"])
        if out != shape[0] * k * k:
            return (
                f"soft_split makes tokens of in_channels x kernel^2 = {shape[0] * k * k} "
                f"values; set out_channels to that, not {out}"
            )
        if min(self.out_shape(shape, out, p)[1:]) < 1:
            return f"input {shape[1]}x{shape[2]} is too small for {k}x{k} patches"
        return super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        k, s, pad = int(p["kernel"]), int(p["stride"]), int(p["padding"])
        return out, conv_out(shape[1], k, s, pad), conv_out(shape[2], k, s, pad)

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        return Cost()

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return ()

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import SoftSplit as SoftSplitModule

        args = (int(p["kernel"]), int(p["stride"]), int(p["padding"]))
        return LayerCall(SoftSplitModule, args)


class T2TPerformer(BlockFamily):
    name = "t2t_performer"
    attention = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "T2T-ViT Token_performer (Yuan et al., ICCV 2021), yitu-opensource/T2T-ViT"
    params = (
        Param("features", int, times(0.5), min=1, doc="random features (T2T-ViT: width / 2)"),
        Param("hidden", int, times(1), min=1, doc="MLP hidden width"),
    )

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return out, shape[1], shape[2]

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        d, h, w = shape
        t, e, m, hid = h * w, out, int(p["features"]), int(p["hidden"])
        return (
            Cost(2 * d + 2 * e)
            + linear_cost(d, 3 * e, t)
            + Cost(0, 2 * t * e * m, 2 * t * m)  # random features of keys and queries
            + Cost(0, t * m, t)  # normaliser
            + Cost(0, 2 * t * e * m, e * m + t * e)  # K'^T V, then Q' (K'^T V)
            + linear_cost(e, e, t)
            + linear_cost(e, hid, t)
            + linear_cost(hid, e, t)
        )

    def buffers(self, shape: Shape, out: int, p: Mapping[str, Any]) -> int:
        return int(p["features"]) * out  # the fixed random features

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return (shape[0], shape[1] * shape[2], out, out, int(p["hidden"]))

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import T2TPerformer as PerformerModule

        args = (shape[0], out, int(p["features"]), int(p["hidden"]))
        return LayerCall(PerformerModule, args)
