"""``build(arch)``: the torch module of an architecture, composed from its families' builders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archsearch.spec import Architecture

if TYPE_CHECKING:
    from torch import nn

    from archsearch.blocks.layers import Network


def build(arch: Architecture) -> Network:
    """Returns a fresh ``torch.nn.Module`` computing ``arch`` (randomly initialised).

    The module is an :class:`archsearch.blocks.layers.Network` with attributes ``stem``,
    ``stages`` (each an ``nn.Sequential`` of the downsample, if any, and the blocks) and
    ``head``. Build under ``torch.device("meta")`` to get its shapes and counts without memory.
    """
    from torch import nn

    from archsearch.blocks.layers import Network

    def make(i: int) -> nn.Module:
        layer = arch.layers[i]
        return layer.family.build(layer.in_shape, layer.block.out_channels, layer.block.params)

    index = 1
    stages = []
    for stage in arch.stages:
        n = stage.depth + (stage.downsample is not None)
        stages.append(nn.Sequential(*(make(i) for i in range(index, index + n))))
        index += n
    return Network(make(0), stages, make(index))
