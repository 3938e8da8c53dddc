"""Torch modules the block families compose, one module per family file (``conv_layers``,
``conv_blocks``, ``token_mixers``, ``vit``, ``hybrid``, ``heads``, ``resnas``, ``cells``) plus
``common`` (shared layers) and ``network`` (what :func:`archsearch.build` returns).

Every family's :meth:`~archsearch.blocks.BlockFamily.layer` names one class or function here
(or a ``torch.nn`` class) and its plain arguments; these modules import nothing but torch and
each other, so that ``archsearch export --format py`` can copy what a network uses into a file
that needs only torch. They import torch at the top; nothing outside a family's ``layer``
method imports them, so that counting, the space machinery, the store and the CLI's read-only
commands stay torch-free.
"""

from __future__ import annotations

from archsearch.blocks.layers.casvit import CASViTBlock
from archsearch.blocks.layers.cells import NB201CellModule, nb201_head, nb201_reduce
from archsearch.blocks.layers.common import (
    Attention,
    ConvNormAct,
    LayerNorm2d,
    LayerScale,
    Mlp,
    QuickGELU,
    Residual,
    SqueezeExcite,
    StarReLU,
    conv_mlp,
    make_act,
    make_norm2d,
    no_residual,
    skip,
    to_sequence,
)
from archsearch.blocks.layers.conv_blocks import ConvNeXtBlock, bottleneck, mbconv
from archsearch.blocks.layers.conv_layers import conv_norm, conv_stem, resnet_stem
from archsearch.blocks.layers.convit import GPSABlock
from archsearch.blocks.layers.effformer_v2 import EffV2AttnBlock, EffV2Down, EffV2FFN
from archsearch.blocks.layers.heads import Head
from archsearch.blocks.layers.hornet import HorNetBlock
from archsearch.blocks.layers.hybrid import (
    ConvAttention,
    CvTBlock,
    CvTEmbed,
    EfficientAttention,
    NextConvBlock,
    NextPatchEmbed,
    NextTransformerBlock,
)
from archsearch.blocks.layers.multiscale import CrossClsFusion, Resize, WithContext
from archsearch.blocks.layers.network import (
    Branches,
    MeanHeads,
    MultiStreamNetwork,
    Network,
    StageOutputs,
    Stream,
)
from archsearch.blocks.layers.repvgg import RepVGGBlock, reparameterize
from archsearch.blocks.layers.resnas import PosPatchEmbed, ResidualReduction, ResNASBlock
from archsearch.blocks.layers.swin import SwinBlock, SwinMerge
from archsearch.blocks.layers.t2t import SoftSplit, T2TPerformer
from archsearch.blocks.layers.token_mixers import (
    MetaFormerBlock,
    PoolMixer,
    TransformerBlock,
    poolformer_block,
)
from archsearch.blocks.layers.tokens import ClsToken, PosConv, PosEmbed
from archsearch.blocks.layers.uniformer import UniFormerConvBlock
from archsearch.blocks.layers.vit import (
    BiasedAttention,
    MetaBlock3d,
    TinyViTBlock,
    ViTEmbed,
    tinyvit_merge,
)
from archsearch.blocks.layers.volo import ClassAttnBlock, OutlookerBlock

__all__ = [
    "Attention",
    "BiasedAttention",
    "Branches",
    "CASViTBlock",
    "ClassAttnBlock",
    "ClsToken",
    "ConvAttention",
    "ConvNeXtBlock",
    "ConvNormAct",
    "CrossClsFusion",
    "CvTBlock",
    "CvTEmbed",
    "EffV2AttnBlock",
    "EffV2Down",
    "EffV2FFN",
    "EfficientAttention",
    "GPSABlock",
    "Head",
    "HorNetBlock",
    "LayerNorm2d",
    "LayerScale",
    "MeanHeads",
    "MetaBlock3d",
    "MetaFormerBlock",
    "Mlp",
    "MultiStreamNetwork",
    "NB201CellModule",
    "Network",
    "NextConvBlock",
    "NextPatchEmbed",
    "NextTransformerBlock",
    "OutlookerBlock",
    "PoolMixer",
    "PosConv",
    "PosEmbed",
    "PosPatchEmbed",
    "QuickGELU",
    "RepVGGBlock",
    "ResNASBlock",
    "Residual",
    "ResidualReduction",
    "Resize",
    "SoftSplit",
    "SqueezeExcite",
    "StageOutputs",
    "StarReLU",
    "Stream",
    "SwinBlock",
    "SwinMerge",
    "T2TPerformer",
    "TinyViTBlock",
    "TransformerBlock",
    "UniFormerConvBlock",
    "ViTEmbed",
    "WithContext",
    "bottleneck",
    "conv_mlp",
    "conv_norm",
    "conv_stem",
    "make_act",
    "make_norm2d",
    "mbconv",
    "nb201_head",
    "nb201_reduce",
    "no_residual",
    "poolformer_block",
    "reparameterize",
    "resnet_stem",
    "skip",
    "tinyvit_merge",
    "to_sequence",
]
