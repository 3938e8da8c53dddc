"""The architecture spec: validation, canonical JSON, digest, YAML round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

import archsearch
from archsearch.errors import SpecError
from archsearch.spec import Architecture, Block, Stage

SMALL = {
    "stem": {"type": "conv_stem", "out_channels": 32},
    "stages": [
        {"blocks": [{"type": "convnext", "out_channels": 32, "repeat": 2}]},
        {
            "downsample": {"type": "conv_down", "out_channels": 64},
            "blocks": [{"type": "mhsa", "out_channels": 64, "params": {"heads": 2}}],
        },
    ],
    "head": {"type": "head"},
}


def test_issue_example_round_trip() -> None:
    space = archsearch.load_space("hybrid")
    arch = space.sample(seed=0)
    assert isinstance(arch, archsearch.Architecture)
    assert archsearch.Architecture.from_json(arch.to_json()).digest == arch.digest
    assert archsearch.Architecture.from_yaml(arch.to_yaml()).digest == arch.digest
    cost = archsearch.count(arch)
    assert cost.params > 0 and cost.macs > 0


def test_defaults_are_resolved_in_canonical_json() -> None:
    arch = Architecture.from_dict(SMALL)
    data = json.loads(arch.to_json())
    assert data["input_shape"] == [3, 224, 224] and data["num_classes"] == 1000
    assert data["stages"][0]["blocks"][0]["params"] == {
        "hidden": 128,
        "kernel": 7,
        "layer_scale": True,
    }
    assert data["head"]["out_channels"] == 1000
    assert len(data["stages"][0]["blocks"]) == 2  # repeat expanded
    # canonical: compact and key-sorted, so the digest ignores how the input was written
    assert arch.to_json() == json.dumps(data, sort_keys=True, separators=(",", ":"))


def test_digest_identifies_the_network() -> None:
    a = Architecture.from_dict(SMALL)
    explicit = json.loads(a.to_json())
    assert Architecture.from_dict(explicit).digest == a.digest
    changed = json.loads(a.to_json())
    changed["stages"][0]["blocks"][1]["params"]["kernel"] = 5
    assert Architecture.from_dict(changed).digest != a.digest
    assert len(a.digest) == 64


def test_spec_is_frozen_and_hashable() -> None:
    a = Architecture.from_dict(SMALL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.num_classes = 10  # type: ignore[misc]
    assert hash(a.stem) == hash(Architecture.from_dict(SMALL).stem)
    assert a == Architecture.from_dict(SMALL)


def test_layers_carry_shapes() -> None:
    a = Architecture.from_dict(SMALL)
    paths = [layer.path for layer in a.layers]
    assert paths == [
        "stem",
        "stages[0].blocks[0]",
        "stages[0].blocks[1]",
        "stages[1].downsample",
        "stages[1].blocks[0]",
        "head",
    ]
    assert a.layers[0].out_shape == (32, 56, 56)
    assert a.layers[3].out_shape == (64, 28, 28)
    assert a.depth == 3 and a.widths == (32, 64)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["stages"][1]["blocks"][0]["params"].update(heads=5),
            r"stages\[1\]\.blocks\[0\] \(mhsa\): heads=5 does not divide out_channels=64",
        ),
        (
            lambda d: d["stages"][0]["blocks"][0].update(type="convnxt"),
            r"stages\[0\]\.blocks\[0\]: unknown block type 'convnxt'; choose one of: .*convnext",
        ),
        (
            lambda d: d["stages"][1].update(downsample=None),
            r"stages\[1\]\.blocks\[0\] \(mhsa\): mhsa keeps its width: in_channels=32 must equal",
        ),
        (
            lambda d: d.update(stem={"type": "convnext", "out_channels": 32}),
            r"stem: block type 'convnext' cannot be a stem",
        ),
        (
            lambda d: d.update(num_classes=10, head={"type": "head", "out_channels": 5}),
            r"head: out_channels=5 must equal num_classes=10",
        ),
        (lambda d: d.update(input_shape=[3, 0, 224]), r"input_shape must be three positive"),
        (lambda d: d["stages"].append({"blocks": []}), r"stages\[2\]: a stage needs at least"),
        (lambda d: d.update(extra=1), r"spec: unknown key\(s\) extra"),
        (lambda d: d["stages"][0]["blocks"][0].update(repeat=0), r"repeat must be a positive"),
        (
            lambda d: d["stages"][0]["blocks"][0].update(out_channels=-3),
            r"out_channels must be a positive integer, got -3",
        ),
    ],
)
def test_invalid_specs_name_the_block_and_values(mutate, message) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(json.dumps(SMALL))
    mutate(data)
    with pytest.raises(SpecError, match=message):
        Architecture.from_dict(data)


def test_bad_json_and_yaml_are_user_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match="not valid JSON"):
        Architecture.from_json("{nope")
    with pytest.raises(SpecError, match=r"architecture YAML:\d+: YAML syntax error"):
        Architecture.from_yaml("a: [1, 2")
    with pytest.raises(SpecError, match="must be a mapping"):
        Architecture.from_json("[1, 2]")
    path = tmp_path / "a.yaml"
    path.write_text("stem: {type: conv_stem}\nstages: []\nhead: {type: head}\n")
    with pytest.raises(SpecError, match="a.yaml: stem: needs 'type' and 'out_channels'"):
        Architecture.load(path)


def test_direct_construction_validates() -> None:
    with pytest.raises(SpecError, match="keeps its width"):
        Architecture(
            stem=Block("conv_stem", 32),
            stages=(Stage((Block("convnext", 64),)),),
            head=Block("head", 1000),
        )


def test_build_returns_a_module_with_the_right_output() -> None:
    import torch

    arch = Architecture.from_dict({**SMALL, "input_shape": [3, 64, 64], "num_classes": 7})
    model = archsearch.build(arch).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7)


def test_params_are_read_only_and_hashable() -> None:
    block = Block("convnext", 32)
    with pytest.raises(TypeError, match="read-only"):
        block.params["kernel"] = 3  # type: ignore[index]
    with pytest.raises(TypeError, match="read-only"):
        block.params.update(kernel=3)
    assert hash(block.params) == hash(Block("convnext", 32, {"kernel": 7}).params)
    assert list(block.params) == sorted(block.params)
