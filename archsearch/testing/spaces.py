"""Spaces: every sample, mutation and crossover is a member, round-trips through JSON with the
same digest and through encode/decode; sampling is deterministic; the flat view has the same
labels for every member; ``block_options`` covers every member's blocks.

A plugin's (or a user's space file's) test::

    from archsearch.testing.spaces import check_space
    def test_my_space(): check_space(load_space("my_space.yaml"))
"""

from __future__ import annotations

import random

from archsearch.spaces import Space
from archsearch.spec import Architecture


def check_member(space: Space, arch: Architecture) -> None:
    """``arch`` is a member and round-trips through JSON and the encoding."""
    assert space.contains(arch), space.contains(arch).reason
    again = Architecture.from_json(arch.to_json())
    assert again.digest == arch.digest
    assert space.decode(space.encode(arch)) == arch


def check_samples(space: Space, seeds: range = range(20)) -> None:
    """Samples are members; a seed gives the same member every time."""
    for seed in seeds:
        arch = space.sample(seed=seed)
        check_member(space, arch)
        assert space.sample(seed=seed) == arch


def check_mutations(space: Space, seeds: range = range(20)) -> None:
    """A mutation is a member and differs from its parent (when the space has more than
    one member)."""
    several = bool(space.choices())
    for seed in seeds:
        parent = space.sample(seed=seed)
        child = space.mutate(parent, random.Random(seed + 1000))
        check_member(space, child)
        if several:
            assert child.digest != parent.digest


def check_crossovers(space: Space, seeds: range = range(20)) -> None:
    """A crossover is a member whose every stage comes from one parent."""
    for seed in seeds:
        pa, pb = space.sample(seed=seed), space.sample(seed=seed + 500)
        child = space.crossover(pa, pb, random.Random(seed + 2000))
        check_member(space, child)
        for i, stage in enumerate(child.stages):
            assert stage in (pa.stages[i], pb.stages[i]) or stage.blocks in (
                pa.stages[i].blocks,
                pb.stages[i].blocks,
            )


def check_flat_view(space: Space, seeds: range = range(10)) -> None:
    """``choices()`` is one fixed set of labels; every member's encoding uses labels of the
    space only."""
    labels = set(space.choices()) | set(space.fixed())
    for seed in seeds:
        assert set(space.encode(space.sample(seed=seed))) <= labels


def check_block_options(space: Space, seeds: range = range(20)) -> None:
    """Every block (at its input shape) of a member is one of ``block_options()``."""
    options = set(space.block_options())
    for seed in seeds:
        for layer in space.sample(seed=seed).layers:
            assert (layer.block, layer.in_shape) in options, layer.path


def check_space(space: Space, seeds: range = range(20), *, block_options: bool = True) -> None:
    """Every check of this module on ``space`` (``block_options=False`` skips the
    enumeration, which runs to millions of blocks in spaces with wide width ranges)."""
    check_samples(space, seeds)
    check_mutations(space, seeds)
    check_crossovers(space, seeds)
    check_flat_view(space, seeds)
    if block_options:
        check_block_options(space, seeds)
