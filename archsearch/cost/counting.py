"""Exact analytic counting of an architecture's parameters, MACs and activations, torch-free."""

from __future__ import annotations

from functools import lru_cache

from archsearch.blocks import Cost, Shape, get_block
from archsearch.spec import Architecture, Params


@lru_cache(maxsize=65536)
def block_cost(block_type: str, in_shape: Shape, out_channels: int, params: Params) -> Cost:
    """The cost of one block at one input shape (memoised: spaces reuse block signatures)."""
    return get_block(block_type).cost(in_shape, out_channels, params)


def count(arch: Architecture) -> Cost:
    """The exact parameters, MACs and activations of ``arch`` for one input image.

    Equal to the built module's ``sum(p.numel())`` and to ``FlopCounterMode``'s total / 2
    (attention counted through the math SDPA kernel); see the README's counting convention.
    """
    params = macs = acts = 0
    for layer in arch.layers:
        c = block_cost(
            layer.block.type, layer.in_shape, layer.block.out_channels, layer.block.params
        )
        params += c.params
        macs += c.macs
        acts += c.activations
    return Cost(params, macs, acts)


def count_layers(arch: Architecture) -> list[tuple[str, str, Cost]]:
    """``(path, block type, cost)`` for every block of ``arch``, stem to head."""
    return [
        (
            layer.path,
            layer.block.type,
            block_cost(
                layer.block.type, layer.in_shape, layer.block.out_channels, layer.block.params
            ),
        )
        for layer in arch.layers
    ]
