"""``build(arch)``: the torch module of an architecture, composed from its families' builders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archsearch.blocks import Cost, Shape
from archsearch.errors import SpecError
from archsearch.limits import MAX_BUILD_PARAMS, MAX_FORWARD_BYTES
from archsearch.spec import Architecture, Block

if TYPE_CHECKING:
    from collections.abc import Iterator

    from torch import nn

    from archsearch.blocks.layers import Network


def _cost(arch: Architecture) -> Cost:
    """The network's exact cost from its families' rules (what ``archsearch.count`` sums,
    without the cost package's caches)."""
    total = Cost()
    for layer in arch.layers:
        total += layer.family.cost(layer.in_shape, layer.block.out_channels, layer.block.params)
    return total


def _buffers(arch: Architecture) -> int:
    """Elements of the buffers that grow with a block's input or parameters (index tables,
    masks, fixed random features), from the families' rules."""
    return sum(
        layer.family.buffers(layer.in_shape, layer.block.out_channels, layer.block.params)
        for layer in arch.layers
    )


def check_memory(arch: Architecture, *, batch: int | None = None) -> None:
    """Refuses, before anything is allocated, a network too large to build
    (:data:`~archsearch.limits.MAX_BUILD_PARAMS` parameters, the families' growing buffers
    included: :meth:`~archsearch.blocks.BlockFamily.buffers`) or, with ``batch``, to run a
    forward pass of (:data:`~archsearch.limits.MAX_FORWARD_BYTES` of activations, float32).

    Raises:
        SpecError: the bound and the network's exact count (``archsearch count`` gives it).
    """
    cost = _cost(arch)
    params = cost.params
    if params > MAX_BUILD_PARAMS:
        raise SpecError(
            f"{arch.digest[:12]}: {params:.3g} parameters; archsearch builds networks of at most "
            f"{MAX_BUILD_PARAMS:.0e} ({MAX_BUILD_PARAMS * 4 / 1e9:.0f} GB in float32)"
        )
    buffers = _buffers(arch)
    if params + buffers > MAX_BUILD_PARAMS:
        raise SpecError(
            f"{arch.digest[:12]}: {params:.3g} parameters and {buffers:.3g} buffer elements "
            f"(attention index tables, masks, fixed features); archsearch builds networks of at "
            f"most {MAX_BUILD_PARAMS:.0e} in all: use a smaller input, window or width"
        )
    if batch is not None:
        need = cost.activation_bytes * batch
        if need > MAX_FORWARD_BYTES:
            raise SpecError(
                f"{arch.digest[:12]}: a forward pass of batch {batch} needs "
                f"{need / 1024**3:.1f} GiB of activations; at most "
                f"{MAX_FORWARD_BYTES / 1024**3:.0f} GiB: use a smaller input or batch"
            )


def check_block_memory(block: Block, shape: Shape, *, batch: int = 1) -> None:
    """:func:`check_memory` for one block at input ``shape`` (latency profiling).

    Raises:
        SpecError: the block is too large to build or to run.
    """
    cost = block.family.cost(shape, block.out_channels, block.params)
    context = block.family.context(shape, block.out_channels, block.params)
    if context is not None:  # the second stream it reads is made for it (a fuse block)
        cost += Cost(activations=context[0] * context[1] * context[2])
    if cost.params > MAX_BUILD_PARAMS or cost.activation_bytes * batch > MAX_FORWARD_BYTES:
        raise SpecError(
            f"block {block.type} at input {list(shape)}: {cost.params:.3g} parameters and "
            f"{cost.activation_bytes * batch / 1024**3:.1f} GiB of activations; at most "
            f"{MAX_BUILD_PARAMS:.0e} and {MAX_FORWARD_BYTES / 1024**3:.0f} GiB"
        )


def build(arch: Architecture) -> Network:
    """Returns a fresh ``torch.nn.Module`` computing ``arch`` (randomly initialised).

    The module is an :class:`archsearch.blocks.layers.Network` with attributes ``stem``,
    ``stages`` (each an ``nn.Sequential`` of the downsample, if any, and the blocks) and
    ``head``; for a network with branched stages, a
    :class:`~archsearch.blocks.layers.MultiStreamNetwork`, whose stages pass lists of streams
    and whose head averages one head per stream. Build under ``torch.device("meta")`` to get
    its shapes and counts without memory.

    Raises:
        SpecError: the network has more than :data:`~archsearch.limits.MAX_BUILD_PARAMS`
            parameters.
    """
    from torch import nn

    from archsearch.blocks.layers import Network

    check_memory(arch)

    modules = iter(
        [
            layer.family.build(layer.in_shape, layer.block.out_channels, layer.block.params)
            for layer in arch.layers
        ]
    )
    stem = next(modules)
    if not arch.branched:
        stages = [
            nn.Sequential(*(next(modules) for _ in stage.all_blocks())) for stage in arch.stages
        ]
        return Network(stem, stages, next(modules))
    return _multi_stream(arch, stem, modules)


def _multi_stream(arch: Architecture, stem: nn.Module, modules: Iterator[nn.Module]) -> Network:
    """The :class:`~archsearch.blocks.layers.MultiStreamNetwork` of a network with branched
    stages, from its layers' modules in the spec's order."""
    from torch import nn

    from archsearch.blocks.layers import Branches, MeanHeads, MultiStreamNetwork, Stream

    stages: list[nn.Module] = []
    for stage in arch.stages:
        if not stage.branches:
            stages.append(Stream(*(next(modules) for _ in stage.all_blocks())))
            continue
        branches = [
            nn.Sequential(*(next(modules) for _ in br.all_blocks())) for br in stage.branches
        ]
        fuse = [next(modules) for _ in stage.fuse]
        stages.append(Branches(branches, fuse, stage.merge or "none"))
    return MultiStreamNetwork(stem, stages, MeanHeads(list(modules)))
