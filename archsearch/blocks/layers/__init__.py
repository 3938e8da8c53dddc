"""Torch modules the block families compose in their ``build`` methods, one module per family
file (``conv_blocks``, ``token_mixers``, ``vit``, ``hybrid``, ``heads``, ``resnas``, ``cells``)
plus ``common`` (shared layers) and ``network`` (what :func:`archsearch.build` returns).

These modules import torch at the top; nothing outside a ``build`` method imports them, so that
counting, the space machinery, the store and the CLI's read-only commands stay torch-free.
"""

from __future__ import annotations

from archsearch.blocks.layers.cells import NB201CellModule
from archsearch.blocks.layers.common import (
    Attention,
    ConvNormAct,
    LayerNorm2d,
    LayerScale,
    Mlp,
    QuickGELU,
    Residual,
    SqueezeExcite,
    conv_mlp,
    make_act,
    make_norm2d,
    no_residual,
    skip,
    to_sequence,
)
from archsearch.blocks.layers.conv_blocks import ConvNeXtBlock
from archsearch.blocks.layers.heads import Head
from archsearch.blocks.layers.hybrid import (
    ConvAttention,
    CvTBlock,
    CvTEmbed,
    EfficientAttention,
    NextConvBlock,
    NextPatchEmbed,
    NextTransformerBlock,
)
from archsearch.blocks.layers.network import Network
from archsearch.blocks.layers.resnas import PosPatchEmbed, ResidualReduction, ResNASBlock
from archsearch.blocks.layers.token_mixers import MetaFormerBlock, PoolMixer, TransformerBlock
from archsearch.blocks.layers.vit import BiasedAttention, MetaBlock3d, TinyViTBlock, ViTEmbed

__all__ = [
    "Attention",
    "BiasedAttention",
    "ConvAttention",
    "ConvNeXtBlock",
    "ConvNormAct",
    "CvTBlock",
    "CvTEmbed",
    "EfficientAttention",
    "Head",
    "LayerNorm2d",
    "LayerScale",
    "MetaBlock3d",
    "MetaFormerBlock",
    "Mlp",
    "NB201CellModule",
    "Network",
    "NextConvBlock",
    "NextPatchEmbed",
    "NextTransformerBlock",
    "PoolMixer",
    "PosPatchEmbed",
    "QuickGELU",
    "ResNASBlock",
    "Residual",
    "ResidualReduction",
    "SqueezeExcite",
    "TinyViTBlock",
    "TransformerBlock",
    "ViTEmbed",
    "conv_mlp",
    "make_act",
    "make_norm2d",
    "no_residual",
    "skip",
    "to_sequence",
]
