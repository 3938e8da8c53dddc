"""The nb201 space: NAS-Bench-201's cells through the space machinery, its notation and costs."""

from __future__ import annotations

import itertools
import random

import pytest

from archsearch import build, count
from archsearch.blocks.cells import EDGE_PARAMS, OPS
from archsearch.cost.reference import measure_arch
from archsearch.errors import SpaceError, UserError
from archsearch.spaces import Space, load_space
from archsearch.spaces.nb201 import (
    arch_str,
    cell_ops,
    equivalence_key,
    format_arch_str,
    from_arch_str,
    parse_arch_str,
)

ALL_CELLS = [
    format_arch_str(dict(zip(EDGE_PARAMS, combo, strict=True)))
    for combo in itertools.product(OPS, repeat=6)
]
BEST_C10 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)


@pytest.fixture(scope="module")
def nb201() -> Space:
    return load_space("nb201")


def test_space_is_six_edges_of_five_ops(nb201: Space) -> None:
    choices = nb201.choices()
    assert sorted(choices) == sorted(f"cell.nb201_cell.{e}" for e in EDGE_PARAMS)
    assert all(c.values == OPS for c in choices.values())
    assert nb201.size(samples=50).total == 5**6 == len(ALL_CELLS)


@pytest.mark.slow
def test_every_cell_round_trips_with_its_own_digest(nb201: Space) -> None:
    digests = set()
    for s in ALL_CELLS:
        arch = from_arch_str(s, nb201)
        assert arch_str(arch) == s
        digests.add(arch.digest)
    # identity choice (documented in archsearch.spaces.nb201): no two cells share a digest
    assert len(digests) == len(ALL_CELLS)


def test_all_fifteen_cells_are_tied(nb201: Space) -> None:
    arch = nb201.sample(seed=3)
    cells = [b for st in arch.stages for b in st.blocks]
    assert len(cells) == 15 and len({b.params for b in cells}) == 1
    assert [st.width for st in arch.stages] == [16, 32, 64]
    for i in range(20):
        child = nb201.mutate(arch, random.Random(i))
        changed = [e for e in EDGE_PARAMS if cell_ops(child)[e] != cell_ops(arch)[e]]
        assert len(changed) == 1 and nb201.contains(child)
    mixed = nb201.crossover(arch, nb201.sample(seed=4), random.Random(0))
    assert nb201.contains(mixed)


def test_costs_match_nas_bench_201_and_the_built_module(nb201: Space) -> None:
    # NAS-Bench-201 (CIFAR-10) reports 0.073-1.532 M parameters and 7.78-220.11 MFLOPs.
    biggest = from_arch_str(format_arch_str(dict.fromkeys(EDGE_PARAMS, "nor_conv_3x3")), nb201)
    smallest = from_arch_str(format_arch_str(dict.fromkeys(EDGE_PARAMS, "none")), nb201)
    assert count(biggest).as_dict() == {
        "params": 1_531_546,
        "macs": 220_119_680,
        "activations": count(biggest).activations,
    }
    assert (count(smallest).params, count(smallest).macs) == (73_306, 7_783_040)
    for s in (BEST_C10, ALL_CELLS[1234], ALL_CELLS[-1]):
        arch = from_arch_str(s, nb201)
        assert measure_arch(arch) == count(arch), s


def test_built_cell_computes_the_dag() -> None:
    import torch

    space = load_space("nb201")
    # node3 = skip(node0) + skip(node2) with node2 = skip(node0): the cell doubles its input
    ops = dict.fromkeys(EDGE_PARAMS, "none") | {"e2_0": "skip_connect", "e3_0": "skip_connect"}
    ops["e3_2"] = "skip_connect"
    net = build(from_arch_str(format_arch_str(ops), space))
    cell = net.stages[0][0]
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(cell(x), 2 * x)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.slow
def test_equivalence_classes_are_documented() -> None:
    keys = {equivalence_key(s) for s in ALL_CELLS}
    assert len(keys) == 8765  # the count the module docstring gives
    # swapping the two intermediate nodes
    a = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|skip_connect~1|avg_pool_3x3~2|"
    b = "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|none~0|avg_pool_3x3~1|skip_connect~2|"
    assert equivalence_key(a) == equivalence_key(b)
    # a dead end: node 1 feeds nothing that reaches the output
    live = "|none~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|"
    dead = "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|"
    assert equivalence_key(live) == equivalence_key(dead)
    other = "|none~0|+|nor_conv_1x1~0|none~1|+|none~0|none~1|skip_connect~2|"
    assert equivalence_key(other) != equivalence_key(live)
    # no path from input to output: every such cell is one class
    assert equivalence_key(format_arch_str(dict.fromkeys(EDGE_PARAMS, "none"))) == "empty"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("|nor_conv_3x3~0|", "expected 3 node groups"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must read op~0"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2's group"),
    ],
)
def test_bad_strings_are_named(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_arch_str(text)


def test_other_spaces_have_no_notation(hybrid: Space) -> None:
    with pytest.raises(UserError, match="has no nb201_cell blocks"):
        from_arch_str(BEST_C10, hybrid)


GROUP_SPACE = """
name: g
input_shape: [3, 32, 32]
num_classes: 10
stem: {{types: {{conv_bn_act: {{kernel: 3, act: none}}}}}}
stages:
  - name: s1
    depth: [1, 2]
    width: [16]
    shared: {first}
    types: {{nb201_cell: {{e1_0: [none, skip_connect], e3_2: [skip_connect, nor_conv_1x1]}}}}
  - name: s2
    depth: [1]
    width: [32]
    downsample: {{types: {{nb201_reduce: {{}}}}}}
    shared: {second}
    types: {{nb201_cell: {{e1_0: [none, skip_connect], e3_2: {ops2}}}}}
head: {{types: {{nb201_head: {{}}}}}}
"""


def test_shared_groups_tie_stages_and_are_validated() -> None:
    tied = Space.from_yaml(
        GROUP_SPACE.format(first="c", second="c", ops2="[skip_connect, nor_conv_1x1]")
    )
    assert set(tied.choices()) == {"s1.depth", "c.nb201_cell.e1_0", "c.nb201_cell.e3_2"}
    assert tied.size(samples=10).total == 2 * 4
    free = Space.from_yaml(
        GROUP_SPACE.format(first="true", second="true", ops2="[skip_connect, nor_conv_1x1]")
    )
    assert free.size(samples=10).total == 2 * 4 * 4
    with pytest.raises(SpaceError, match=r"<space>:\d+: stage s2 shares 'c' with stage s1"):
        Space.from_yaml(GROUP_SPACE.format(first="c", second="c", ops2="[skip_connect]"))
    with pytest.raises(SpaceError, match="shared: 's1' names the choices"):
        Space.from_yaml(GROUP_SPACE.format(first="s1", second="s1", ops2="[none]"))
