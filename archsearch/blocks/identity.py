"""``identity``: a block position left empty, as a choice of a search space.

EfficientFormer's MetaPath (Li et al., NeurIPS 2022) offers, at every block position, a Meta4D
block, a Meta3D block or the identity; slimming sets positions to identity. Written as a block
type, the identity is a choice like any other (``types: {pool: {...}, identity: {}}``): it
keeps the map as it is and costs nothing. As a stem, it hands the image to the first stage
as it is (CrossViT's branches each embed the image themselves).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from archsearch.blocks.base import (
    BlockFamily,
    Cost,
    LayerCall,
    Role,
    Shape,
    keeps_width,
)

if TYPE_CHECKING:
    pass


class Identity(BlockFamily):
    name = "identity"
    width_keeping = True
    roles: ClassVar[frozenset[Role]] = frozenset({"stem", "block"})
    reference = "EfficientFormer MetaPath (Li et al., NeurIPS 2022): the identity choice"

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return keeps_width(shape, out, self.name) or super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        return Cost()

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return ()

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from torch import nn

        return LayerCall(nn.Identity)
