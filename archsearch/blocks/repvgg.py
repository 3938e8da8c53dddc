"""Re-parameterisable blocks: a multi-branch block for training that folds into one conv for
inference (RepVGG, Ding et al., CVPR 2021; DingXiaoH/RepVGG).

* ``repvgg``: ``form: train`` is a ``k x k`` conv with BN, plus a 1x1 conv with BN, plus a BN
  of the input when the shape is kept, summed, then the activation; ``form: deploy`` is the one
  biased ``k x k`` conv (and activation) the three branches fold into. Both forms compute the
  same function; their params and MACs differ, and the spec says which one it counts.
  ``archsearch.blocks.layers.reparameterize(net)`` folds a trained network's blocks (its state
  dict then loads into the spec with ``form: deploy``).
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
    odd_kernel,
)


class RepVGG(BlockFamily):
    name = "repvgg"
    roles: ClassVar[frozenset[Role]] = frozenset({"stem", "block", "downsample"})
    reference = "RepVGG (Ding et al., CVPR 2021), DingXiaoH/RepVGG RepVGGBlock"
    params = (
        Param("kernel", int, 3, min=3, doc="kernel of the main conv (odd, >= 3)"),
        Param("stride", int, 1, choices=(1, 2), doc="stride of both convs"),
        Param(
            "form",
            str,
            "train",
            choices=("train", "deploy"),
            doc="train: kxk+BN, 1x1+BN and identity BN branches; deploy: the one biased kxk "
            "conv they fold into",
        ),
        Param("act", str, "relu", choices=ACTIVATIONS, doc="activation after the sum"),
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return odd_kernel(p) or super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        k, s = int(p["kernel"]), int(p["stride"])
        return out, conv_out(shape[1], k, s, k // 2), conv_out(shape[2], k, s, k // 2)

    def _identity(self, shape: Shape, out: int, p: Mapping[str, Any]) -> bool:
        return shape[0] == out and int(p["stride"]) == 1

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, k = shape[0], int(p["kernel"])
        _, ho, wo = self.out_shape(shape, out, p)
        act = Cost(act_params(str(p["act"])))
        if p["form"] == "deploy":
            return conv_cost(c, out, k, ho, wo, bias=True) + act
        total = conv_cost(c, out, k, ho, wo) + conv_cost(c, out, 1, ho, wo) + Cost(4 * out) + act
        return total + (Cost(2 * c) if self._identity(shape, out, p) else Cost())

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        # One layer on the main path in either form (the branches fold into it).
        return (shape[0] * int(p["kernel"]) ** 2,)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import RepVGGBlock

        kwargs = {
            "stride": int(p["stride"]),
            "deploy": p["form"] == "deploy",
            "identity": self._identity(shape, out, p),
            "act": str(p["act"]),
        }
        return LayerCall(RepVGGBlock, (shape[0], out, int(p["kernel"])), kwargs)
