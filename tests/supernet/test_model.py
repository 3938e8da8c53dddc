"""The supernet runs any member by slicing and skipping; extract(arch) equals it exactly."""

from __future__ import annotations

import random

import pytest
import torch

import archsearch
from archsearch.errors import NotInSpaceError
from archsearch.spaces import load_space
from archsearch.supernet import Supernet
from tests.conftest import FIXTURES

TINY = str(FIXTURES / "tiny_resnas.yaml")


@pytest.fixture(scope="module")
def small() -> Supernet:
    return _perturbed(Supernet(load_space("vit-resnas-small"), input_shape=(1, 28, 28)))


def _perturbed(net: Supernet) -> Supernet:
    """Random weights everywhere, so that a wrong slice cannot match by initialisation."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return net


def assert_equivalent(net: Supernet, arch: archsearch.Architecture, *, train: bool) -> None:
    x = torch.randn(4, *net.input_shape, generator=torch.Generator().manual_seed(0))
    module = net.extract(arch)
    net.train(train)
    module.train(train)
    with torch.no_grad():
        expected = net(x, arch)
        got = module(x)
    assert (expected - got).abs().max().item() <= 1e-5
    at_input = arch.with_input(net.input_shape, net.num_classes)
    assert sum(p.numel() for p in module.parameters()) == archsearch.count(at_input).params


@pytest.mark.parametrize("seed", range(6))
def test_extract_equals_supernet_on_random_small_members(small: Supernet, seed: int) -> None:
    arch = small.space.sample(seed=seed)
    assert_equivalent(small, arch, train=False)


@pytest.mark.slow
def test_extremes_and_the_hybrid_space_with_batchnorm() -> None:
    net = _perturbed(Supernet(load_space("hybrid-small")))
    smallest, largest = net.member_extremes()
    assert archsearch.count(smallest).macs < archsearch.count(largest).macs
    rng = random.Random(3)
    for arch in [smallest, largest, *(net.space.sample(rng) for _ in range(5))]:
        for train in (False, True):  # train mode: BatchNorm uses the batch's statistics
            assert_equivalent(net, arch, train=train)


@pytest.mark.slow
def test_largest_member_holds_the_whole_bank_of_the_vit_resnas_space() -> None:
    net = Supernet(load_space("vit-resnas"))
    _, largest = net.member_extremes()
    assert sum(p.numel() for p in net.parameters()) == archsearch.count(largest).params
    assert_equivalent(net, net.space.sample(seed=0), train=False)


def test_fewer_heads_and_narrower_widths_are_prefixes(small: Supernet) -> None:
    arch = small.space.sample(seed=4)
    block = next(layer for layer in arch.layers if layer.block.type == "vit_block")
    heads, dim = int(block.block.params["heads"]), int(block.block.params["head_dim"])
    width = block.block.out_channels
    module = small.extract(arch)
    got = module.stages[0][0].q.weight
    bank = next(
        small._tensor(i) for i, k in enumerate(small.keys) if k == "s0.b0:vit_block:q.weight:2"
    )
    assert torch.equal(got, bank[: heads * dim, :width])


def test_gradients_reach_only_the_slices_a_member_uses(small: Supernet) -> None:
    small.zero_grad()
    small.train()
    arch = min(
        (small.space.sample(seed=s) for s in range(20)), key=lambda a: archsearch.count(a).macs
    )
    small(torch.randn(2, *small.input_shape), arch).sum().backward()
    key = "s0.b0:vit_block:q.weight:2"
    grad = small._tensor(small.keys.index(key)).grad
    assert grad is not None
    block = arch.stages[0].blocks[0]
    rows = int(block.params["heads"]) * int(block.params["head_dim"])
    assert grad[:rows, : block.out_channels].abs().sum() > 0
    assert grad[rows:].abs().sum() == 0 and grad[:, block.out_channels :].abs().sum() == 0
    depth = arch.stages[0].depth  # blocks past the depth are skipped: no gradient at all
    deeper = [i for i, k in enumerate(small.keys) if k.startswith(f"s0.b{depth}:")]
    assert deeper and all(small._tensor(i).grad is None for i in deeper)
    small.zero_grad()


def test_non_members_are_refused_with_contains_reason(small: Supernet) -> None:
    other = load_space("hybrid-small").sample(seed=0)
    reason = small.space.contains(other).reason
    with pytest.raises(NotInSpaceError, match="not a member of space 'vit-resnas-small'") as e:
        small.extract(other)
    assert reason in str(e.value)


def test_kernel_sizes_share_the_centre_of_the_largest_kernel() -> None:
    from archsearch.supernet.model import _take

    bank = torch.arange(2 * 2 * 7 * 7, dtype=torch.float32).view(2, 2, 7, 7)
    small = _take(bank, (1, 2, 3, 3), "dwconv.weight")
    assert torch.equal(small, bank[:1, :, 2:5, 2:5])
    qkv = torch.arange(12, dtype=torch.float32).view(12, 1)  # q, k, v of 4 channels each
    assert _take(qkv, (6, 1), "attn.qkv.weight").flatten().tolist() == [0, 1, 4, 5, 8, 9]
