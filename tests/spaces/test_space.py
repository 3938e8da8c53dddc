"""The declarative space: properties of sample/mutate/crossover, schema errors, membership."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archsearch
from archsearch.cost import count
from archsearch.errors import NotInSpaceError, SpaceError, UnknownNameError, UserError
from archsearch.spaces import Space, list_spaces, load_space
from archsearch.spec import Architecture, Block, Stage

seeds = st.integers(0, 2**32 - 1)


def assert_member(space: Space, arch: Architecture) -> None:
    m = space.contains(arch)
    assert m, m.reason
    again = Architecture.from_json(arch.to_json())
    assert again.digest == arch.digest
    assert space.decode(space.encode(arch)) == arch


@settings(max_examples=60)
@given(seed=seeds)
def test_samples_are_members(hybrid: Space, seed: int) -> None:
    assert_member(hybrid, hybrid.sample(seed=seed))


@settings(max_examples=60)
@given(seed=seeds, mseed=seeds)
def test_mutations_are_members_and_differ(hybrid: Space, seed: int, mseed: int) -> None:
    parent = hybrid.sample(seed=seed)
    child = hybrid.mutate(parent, random.Random(mseed))
    assert_member(hybrid, child)
    assert child.digest != parent.digest


@settings(max_examples=60)
@given(a=seeds, b=seeds, cseed=seeds)
def test_crossovers_are_members(hybrid: Space, a: int, b: int, cseed: int) -> None:
    pa, pb = hybrid.sample(seed=a), hybrid.sample(seed=b)
    child = hybrid.crossover(pa, pb, random.Random(cseed))
    assert_member(hybrid, child)
    # every stage of the child comes from one parent
    for i, stage in enumerate(child.stages):
        assert stage in (pa.stages[i], pb.stages[i]) or stage.blocks in (
            pa.stages[i].blocks,
            pb.stages[i].blocks,
        )


@settings(max_examples=10)
@given(seed=seeds)
def test_neighbours_are_the_members_one_choice_away(hybrid: Space, seed: int) -> None:
    arch = hybrid.sample(seed=seed)
    near = hybrid.neighbours(arch, random.Random(seed))
    assert near and len({a.digest for a in near}) == len(near)
    assert arch.digest not in {a.digest for a in near}
    base = hybrid.encode(arch)
    for a in near[:: max(1, len(near) // 25)]:
        assert_member(hybrid, a)
        changed = [k for k, v in base.items() if hybrid.encode(a).get(k, v) != v]
        assert len(changed) == 1  # one active choice (a depth change also adds labels)
    assert len(hybrid.neighbours(arch, random.Random(seed), limit=5)) == 5
    nb201 = archsearch.load_space("nb201")
    cell = nb201.sample(seed=seed)
    assert len(nb201.neighbours(cell)) == 6 * 4  # six edges, four other operations each


def test_sampling_is_deterministic(hybrid: Space) -> None:
    assert hybrid.sample(seed=7) == hybrid.sample(seed=7)
    assert hybrid.sample(random.Random(7)) == hybrid.sample(seed=7)
    assert hybrid.sample(seed=7) != hybrid.sample(seed=8)
    r1, r2 = random.Random(3), random.Random(3)
    a = hybrid.sample(seed=1)
    assert hybrid.mutate(a, r1) == hybrid.mutate(a, r2)


def test_hybrid_spans_the_advertised_cost_range(hybrid: Space) -> None:
    macs = [count(hybrid.sample(seed=s)).macs for s in range(300)]
    assert min(macs) < 0.5e9 and max(macs) > 3e9  # samples spread; exact ends below
    smallest = {k: v[0] for k, v in hybrid._labels.items()}
    for k in smallest:
        if k.endswith(".type") and ".b" in k:
            smallest[k] = "pool" if "pool" in hybrid._labels[k] else "mbconv"
    largest = {k: v[-1] for k, v in hybrid._labels.items()}
    for k in largest:
        if k.endswith(".type") and ".b" in k:
            largest[k] = "mbconv"
    assert count(hybrid.decode(smallest)).macs < 0.25e9
    assert count(hybrid.decode(largest)).macs > 5e9


def test_hybrid_shape(hybrid: Space) -> None:
    arch = hybrid.sample(seed=0)
    sizes = [layer.out_shape[1] for layer in arch.layers if layer.path.endswith("blocks[0]")]
    assert sizes == [56, 28, 14, 7]  # strides 4/8/16/32
    # attention only late: no mhsa in the first two stages
    assert "mhsa" not in hybrid.stages[0].blocks.types
    assert "mhsa" not in hybrid.stages[1].blocks.types
    assert "mhsa" in hybrid.stages[3].blocks.types


def test_flat_view_is_fixed_length(hybrid: Space) -> None:
    choices = hybrid.choices()
    assert "s3.b8.mhsa.heads" in choices  # the deepest slot of s3 is always there
    assert all(len(c.values) > 1 for c in choices.values())
    a = hybrid.encode(hybrid.sample(seed=5))
    assert set(a) <= set(hybrid._labels)


def test_contains_explains_why_not(hybrid: Space) -> None:
    arch = hybrid.sample(seed=2)
    wrong_classes = Architecture(arch.stem, arch.stages, Block("head", 10), num_classes=10)
    m = hybrid.contains(wrong_classes)
    assert not m and "num_classes 10" in m.reason
    two_stages = Architecture(arch.stem, arch.stages[:2], arch.head)
    assert "2 stages" in hybrid.contains(two_stages).reason
    first = arch.stages[0]
    odd = Stage((Block("convnext", first.width, {"kernel": 9}), *first.blocks[1:]), None)
    m = hybrid.contains(Architecture(arch.stem, (odd, *arch.stages[1:]), arch.head))
    assert not m and "kernel=9 is not among the space's choices" in m.reason
    with pytest.raises(NotInSpaceError):
        hybrid.mutate(Architecture(arch.stem, (odd, *arch.stages[1:]), arch.head))


def test_reference_network_outside_hybrid_is_rejected_with_reason() -> None:
    from tests.conftest import FIXTURES

    r50 = Architecture.load(FIXTURES / "deepmad_r50.yaml")
    m = load_space("hybrid").contains(r50)
    assert not m and "stages" in m.reason


def test_size(hybrid: Space) -> None:
    size = hybrid.size(samples=300)
    assert size.total > 10**30
    assert 0.05 < size.feasible_fraction < 1
    assert size.log10 > 30


def test_load_space_names_and_errors(tmp_path: Path) -> None:
    assert "hybrid" in list_spaces()
    with pytest.raises(UnknownNameError, match="choose one of: .*hybrid"):
        load_space("hybird")
    with pytest.raises(SpaceError, match="does not exist"):
        load_space(str(tmp_path / "missing.yaml"))


TINY = """\
name: tiny
input_shape: [3, 32, 32]
num_classes: 10
stem:
  types:
    conv_stem: {act: gelu}
stages:
  - depth: [1, 2]
    width: [16, 32]
    types:
      convnext: {kernel: [3, 5], mlp_ratio: [2, 4]}
  - depth: {min: 1, max: 2}
    width: [32, 64]
    shared: true
    downsample:
      types: {conv_down: {}}
    types:
      mhsa: {heads: [2, 4], mlp_ratio: 2}
      mbconv: {expand: [2, 4], se_ratio: [0, 0.25]}
head:
  types:
    head: {hidden: [0, 128]}
constraints:
  - non_decreasing_width
  - total_depth: {max: 3}
"""


def test_user_yaml_space(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    space = load_space(str(path))
    assert space.name == "tiny" and space.input_shape == (3, 32, 32)
    for seed in range(40):
        arch = space.sample(seed=seed)
        assert_member(space, arch)
        assert arch.depth <= 3
        assert arch.widths[0] <= arch.widths[1]
        second = arch.stages[1].blocks
        assert len({b.type for b in second}) == 1  # shared stage: one type for all blocks
    assert "s2.type" in space.choices() and "s2.b0.type" not in space.choices()
    size = space.size(samples=400)
    # 2 convnext options^depth... exactly: stem 1 * (2 widths * (4 + 16)) * (2 * 1 * (6 * 2))
    # * head 2
    assert size.total == 1 * (2 * (4 + 16)) * (2 * 1 * (6 + 6)) * 2


def test_expand_ratios_follow_the_input_width(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    space = load_space(str(path))
    for seed in range(60):
        arch = space.sample(seed=seed)
        for layer in arch.layers:
            if layer.block.type == "mbconv":
                ratio = layer.block.params["hidden"] / layer.in_shape[0]
                assert ratio in (2, 4)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            (
                "      convnext: {kernel: [3, 5], mlp_ratio: [2, 4]}",
                "      convnxt: {kernel: [3, 5]}",
            ),
            r"tiny.yaml:11: unknown block type 'convnxt'",
        ),
        (
            (
                "      convnext: {kernel: [3, 5], mlp_ratio: [2, 4]}",
                "      convnext: {kernal: [3, 5]}",
            ),
            r"tiny.yaml:11: block type 'convnext' has no parameter 'kernal'; its parameters: ",
        ),
        (
            ("    width: [16, 32]", "    width: [16, abc]"),
            r"tiny.yaml:9: stages\[0\]\.width\[1\]: .*integer.*got 'abc'",
        ),
        (
            ("  - depth: [1, 2]", "  - dept: [1, 2]"),
            r"tiny.yaml:8: stages\[0\]\.dept: unknown key 'dept'; did you mean 'depth'\?",
        ),
        (
            ("  - total_depth: {max: 3}", "  - total_depth: {maxx: 3}"),
            r"tiny.yaml:25: constraint 'total_depth' does not accept option 'maxx'",
        ),
        (
            ("  - non_decreasing_width", "  - wider_later"),
            r"tiny.yaml:24: unknown constraint 'wider_later'; choose one of",
        ),
        (
            ("    conv_stem: {act: gelu}", "    conv_stem: {act: swish}"),
            r"tiny.yaml:6: .*act.*'swish' is not allowed; choose one of",
        ),
        (
            ("    conv_stem: {act: gelu}", "    convnext: {}"),
            r"tiny.yaml:6: block type 'convnext' cannot be a stem",
        ),
        (("  - depth: [1, 2]", "  - depth: [1, 2"), r"tiny.yaml:\d+: YAML syntax error"),
        (("name: tiny\n", ""), r"tiny.yaml:1: .*missing required key 'name'"),
    ],
)
def test_schema_errors_carry_file_and_line(tmp_path: Path, edit, message) -> None:  # type: ignore[no-untyped-def]
    old, new = edit
    assert old in TINY
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace(old, new))
    with pytest.raises(SpaceError, match=message):
        load_space(str(path))


def test_a_bare_depth_or_width_is_its_one_choice(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(
        TINY.replace("  - depth: [1, 2]\n    width: [16, 32]", "  - depth: 2\n    width: 16")
    )
    space = load_space(str(path))
    assert tuple(space.stages[0].depths) == (2,) and tuple(space.stages[0].widths) == (16,)
    # a boolean is not a number of blocks
    path.write_text(TINY.replace("  - depth: [1, 2]", "  - depth: true"))
    with pytest.raises(SpaceError, match=r"tiny.yaml:\d+: stages\[0\]\.depth"):
        load_space(str(path))


def test_choices_that_break_a_block_rule_are_never_sampled(tmp_path: Path) -> None:
    # An even kernel passes the schema (an int >= 1) but no convnext block accepts it.
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("kernel: [3, 5], mlp_ratio", "kernel: [3, 4], mlp_ratio"))
    space = load_space(str(path))
    for seed in range(30):
        for layer in space.sample(seed=seed).layers:
            if layer.block.type == "convnext":
                assert layer.block.params["kernel"] == 3


def test_unsatisfiable_space_says_so(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: bad
            stem: {types: {conv_stem: {}}}
            stages:
              - {depth: [1], width: [64], types: {convnext: {}}}
              - {depth: [1], width: [32], downsample: {types: {conv_down: {}}},
                 types: {convnext: {}}}
            head: {types: {head: {}}}
            constraints: [non_decreasing_width]
            """
        )
    )
    space = load_space(str(path))
    space.max_tries = 50
    with pytest.raises(SpaceError, match="no valid member in 50 samples.*non_decreasing_width"):
        space.sample(seed=0)


def test_decode_rejects_unknown_values(hybrid: Space) -> None:
    a = hybrid.encode(hybrid.sample(seed=0))
    a["s1.width"] = 33
    with pytest.raises(UserError, match="s1.width=33 is not a choice"):
        hybrid.decode(a)
    del a["s1.width"]
    with pytest.raises(UserError, match="lacks label 's1.width'"):
        hybrid.decode(a)


def test_block_options_cover_every_member(hybrid: Space) -> None:
    options = set(hybrid.block_options())
    assert len(options) > 1000
    for seed in range(200):
        for layer in hybrid.sample(seed=seed).layers:
            assert (layer.block, layer.in_shape) in options
    for name in ("convnext_t", "efficientformer_l1", "tinyvit_5m", "poolformer_s12"):
        from archsearch import zoo

        for layer in zoo.get(name).layers:
            assert (layer.block, layer.in_shape) in options, (name, layer.path)


RANGES = """\
name: ranges
input_shape: [3, 64, 64]
num_classes: 10
stem:
  width: {min: 16, max: 32, step: 8}
  types: {conv_bn_act: {kernel: 3, stride: 2}}
stages:
  - depth: {min: 1, max: 3}
    width: {min: 16, max: 64, step: 8}
    first: {stride: 2}
    shared: true
    types:
      mbconv: {kernel: [3, 5], hidden: {min: 16, max: 128, step: 16}, se_hidden_ratio: 0.25}
head: {types: {head: {hidden: 0}}}
"""


def test_ranges_first_overrides_and_hidden_ratios(tmp_path: Path) -> None:
    path = tmp_path / "ranges.yaml"
    path.write_text(RANGES)
    space = load_space(str(path))
    assert space.stages[0].widths == tuple(range(16, 65, 8))
    assert space.describe()["stages"][0]["types"]["mbconv"]["hidden"] == [
        16,
        32,
        48,
        64,
        80,
        96,
        112,
        128,
    ]
    assert space.describe()["stages"][0]["first"] == {"stride": 2}
    for seed in range(40):
        arch = space.sample(seed=seed)
        blocks = arch.stages[0].blocks
        assert blocks[0].params["stride"] == 2
        assert all(b.params["stride"] == 1 for b in blocks[1:])
        for b in blocks:
            assert b.params["se"] == max(8, 8 * (b.params["hidden"] // 32))
        assert space.contains(arch)
        mutated = space.mutate(arch, seed)
        assert space.contains(mutated)
    # The first block's stride is part of membership: a stride-1 first block is not a member.
    arch = space.sample(seed=0)
    data = arch.to_dict()
    data["stages"][0]["blocks"][0]["params"]["stride"] = 1
    other = Architecture.from_dict(data)
    assert "stride=1 differs from the space's value 2" in space.contains(other).reason


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("{min: 16, max: 64, step: 8}", "{min: 64, max: 16}"), "range min 64 is above max 16"),
        (("first: {stride: 2}", "first: {strid: 2}"), "has no parameter 'strid'"),
        (("first: {stride: 2}", "first: {kernel: 3}"), "also lists as a choice"),
        (("first: {stride: 2}", "first: {stride: 3}"), "'stride'=3 is not allowed"),
        (("hidden: {min: 16, max: 128, step: 16}, ", ""), "is a ratio of 'hidden'"),
        (("max: 64, step: 8}", "max: 640000, step: 1}"), "at most 10000 values"),
    ],
)
def test_range_and_first_errors(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    old, new = edit
    assert old in RANGES
    path = tmp_path / "ranges.yaml"
    path.write_text(RANGES.replace(old, new, 1))
    with pytest.raises(SpaceError, match=message):
        load_space(str(path))


@pytest.mark.parametrize(
    ("name", "fixture"), [("convnet", "deepmad_r50.yaml"), ("mbconv", "deepmad_29m.yaml")]
)
def test_deepmad_spaces_contain_the_released_networks(name: str, fixture: str) -> None:
    space = load_space(name)
    arch = Architecture.load(Path(__file__).parents[1] / "fixtures" / fixture)
    assert space.contains(arch)
    assert space.encode(arch)[f"{space.stages[0].name}.depth"] == arch.stages[0].depth


def test_hybrid_small_members_fit_small_images() -> None:
    """hybrid-small: 3x32x32, a few to tens of MFLOPs, and every member takes 1x28x28 data."""
    import torch

    from archsearch.cost import count

    space = load_space("hybrid-small")
    assert space.name in list_spaces() and space.input_shape == (3, 32, 32)
    macs = []
    for seed in range(60):
        arch = space.sample(seed=seed)
        assert space.contains(arch)
        macs.append(count(arch).macs)
        arch.with_input((1, 28, 28), 10)  # raises if a window or reduction does not fit
    assert min(macs) > 2e6 and max(macs) < 60e6
    model = archsearch.build(space.sample(seed=0).with_input((1, 28, 28), 10))
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("vit-resnas-small", 2.01e6, 80.3e6), ("vit-resnas", 0.286e9, 3.19e9)],
)
def test_vit_resnas_spaces_span_their_documented_range(name: str, low: float, high: float) -> None:
    """Every choice at its minimum (maximum) is the cheapest (dearest) member; samples,
    per-gene mutations and uniform crossovers are members."""
    import itertools
    import random

    from archsearch.cost import count

    space = load_space(name)
    fixed = space.fixed()
    extremes = [
        count(space.decode({**fixed, **{k: pick(c.values) for k, c in space.choices().items()}}))
        for pick in (min, max)
    ]
    assert low <= extremes[0].macs < low * 1.01 and high * 0.99 < extremes[1].macs <= high
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(20)]
    assert all(low <= count(a).macs <= high for a in archs)
    for a, b in itertools.pairwise(archs):
        child = space.crossover(a, b, rng, uniform=True)
        assert space.contains(child)
        mutant = space.mutate(a, rng, prob=0.3)
        assert space.contains(mutant) and mutant != a
    if name == "vit-resnas-small":
        arch = archs[0].with_input((1, 28, 28), 10)
        assert [layer.out_shape[1] for layer in arch.layers if layer.role == "downsample"] == [
            4,
            2,
        ]
