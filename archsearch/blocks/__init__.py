"""The block vocabulary: one :class:`BlockFamily` per block type, in the :data:`BLOCKS` registry.

Look a family up with :func:`get_block` (unknown names raise an error listing the known ones)
and list them with :func:`list_blocks`. Plugins register more through the entry-point group
``archsearch.blocks`` (each entry point names a BlockFamily subclass or instance).
"""

from __future__ import annotations

from archsearch.blocks.base import (
    ROLES,
    Alias,
    BlockFamily,
    Cost,
    Param,
    Role,
    Scalar,
    Shape,
)
from archsearch.blocks.cells import NB201Cell, NB201Head, NB201Reduce
from archsearch.blocks.conv_blocks import Bottleneck, ConvNeXt, MBConv
from archsearch.blocks.conv_layers import (
    ConvBnAct,
    ConvDown,
    ConvStem,
    OverlapPatch,
    Patchify,
    PatchMerge,
    ResNetStem,
)
from archsearch.blocks.heads import Head
from archsearch.blocks.hybrid import CvT, CvTEmbed, NextConvBlock, NextTransformerBlock
from archsearch.blocks.resnas import PosPatch, ResReduce, ViTBlock
from archsearch.blocks.token_mixers import MHSA, SRMHSA, Pool
from archsearch.blocks.vit import EffFormerAttn, StageNorm, TinyViT, TinyViTMerge, ViTEmbed
from archsearch.registry import Registry

BLOCKS: Registry[BlockFamily] = Registry(
    "block type",
    entry_point_group="archsearch.blocks",
    adapt=lambda obj: obj() if isinstance(obj, type) else obj,
)

for _family in (
    ConvBnAct,
    ConvStem,
    Patchify,
    OverlapPatch,
    ConvDown,
    PatchMerge,
    ConvNeXt,
    MBConv,
    Bottleneck,
    Pool,
    MHSA,
    SRMHSA,
    Head,
    ResNetStem,
    ViTEmbed,
    EffFormerAttn,
    TinyViT,
    TinyViTMerge,
    StageNorm,
    NextConvBlock,
    NextTransformerBlock,
    CvTEmbed,
    CvT,
    NB201Cell,
    NB201Reduce,
    NB201Head,
    PosPatch,
    ResReduce,
    ViTBlock,
):
    BLOCKS.register(_family.name, _family())


def get_block(name: str) -> BlockFamily:
    """The family registered as ``name``; unknown names raise an error listing the known ones."""
    return BLOCKS.get(name)


def list_blocks(role: Role | None = None) -> list[str]:
    """Names of the registered block types, optionally only those usable in ``role``."""
    return [n for n in BLOCKS.names() if role is None or role in get_block(n).roles]


__all__ = [
    "BLOCKS",
    "ROLES",
    "Alias",
    "BlockFamily",
    "Cost",
    "Param",
    "Role",
    "Scalar",
    "Shape",
    "get_block",
    "list_blocks",
]
