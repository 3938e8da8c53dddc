"""Branched stages: several streams through a network (CrossViT), their validation, exact
costs, the built module's semantics, and the commands that take one stream only."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from archsearch.blocks.layers import Branches, MeanHeads, MultiStreamNetwork
from archsearch.build import build
from archsearch.cost import count
from archsearch.cost.reference import measure_arch
from archsearch.errors import SpecError
from archsearch.evaluators.entropy import deepmad_entropy
from archsearch.spaces import load_space
from archsearch.spec import Architecture

FIXTURES = Path(__file__).parent / "fixtures"


def spec(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    return data


@pytest.mark.parametrize("name", ["tiny_streams", "tiny_merge"])
def test_costs_are_exact_and_specs_round_trip(name: str) -> None:
    arch = Architecture.from_dict(spec(name))
    assert count(arch) == measure_arch(arch)
    again = Architecture.from_json(arch.to_json())
    assert again == arch and again.digest == arch.digest
    assert Architecture.from_yaml(arch.to_yaml()).digest == arch.digest


def test_layers_name_every_stream() -> None:
    arch = Architecture.from_dict(spec("tiny_streams"))
    paths = [layer.path for layer in arch.layers]
    assert paths[:3] == [
        "stem",
        "stages[0].branches[0].blocks[0]",
        "stages[0].branches[0].blocks[1]",
    ]
    assert "stages[0].fuse[1]" in paths and paths[-2:] == ["head[0]", "head[1]"]
    shapes = {layer.path: layer.in_shape for layer in arch.layers}
    # both branches of the opening stage read the stem's output
    assert shapes["stages[0].branches[0].blocks[0]"] == shapes["stages[0].branches[1].blocks[0]"]
    assert shapes["head[0]"] == (24, 17, 1) and shapes["head[1]"] == (32, 5, 1)
    assert arch.summary().count("||") == 2
    assert arch.stages[0].depth == 2 + 4 + 2


def test_the_head_runs_on_each_stream_and_averages_the_logits() -> None:
    arch = Architecture.from_dict(spec("tiny_streams"))
    torch.manual_seed(0)
    net = build(arch).eval()
    assert isinstance(net, MultiStreamNetwork) and isinstance(net.head, MeanHeads)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        streams = net.forward_features(x)
        want = (net.head[0](streams[0]) + net.head[1](streams[1])) / 2
        assert torch.allclose(net(x), want, atol=1e-6)
        assert [tuple(s.shape) for s in streams] == [(2, 24, 17, 1), (2, 32, 5, 1)]


def test_every_fuse_block_reads_the_streams_as_the_branches_left_them() -> None:
    arch = Architecture.from_dict(spec("tiny_streams"))
    torch.manual_seed(0)
    stage = build(arch).eval().stages[0]
    assert isinstance(stage, Branches)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = stage.branches[0](x), stage.branches[1](x)
        want = [stage.fuse[0](a, b), stage.fuse[1](b, a)]  # not fuse[1](b, fuse[0](a, b))
        got = stage([x])
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
    # the fusion changes the class token only
    assert torch.equal(got[0][:, :, 1:], a[:, :, 1:]) and not torch.equal(got[0], a)


def test_merge_joins_the_streams() -> None:
    arch = Architecture.from_dict(spec("tiny_merge"))
    assert arch.stages[0].width == 24  # 16 + 8 channels, concatenated
    torch.manual_seed(0)
    net = build(arch).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        s = net.stem(x)
        stage = net.stages[0]
        assert isinstance(stage, Branches)
        (merged,) = stage([s])
        assert torch.equal(merged, torch.cat([stage.branches[0](s), stage.branches[1](s)], 1))
    for merge, width in (("mean", 16), ("sum", 16)):
        data = spec("tiny_merge")
        data["stages"][0]["branches"][1]["blocks"][0]["out_channels"] = 16
        data["stages"][0]["merge"] = merge
        arch = Architecture.from_dict(data)
        assert arch.stages[0].width == width and count(arch) == measure_arch(arch)


def test_linear_specs_keep_their_canonical_form() -> None:
    arch = load_space("hybrid").sample(seed=0)
    assert not arch.branched and Architecture.from_dict(spec("tiny_merge")).branched
    for stage in arch.to_dict()["stages"]:
        assert set(stage) == {"downsample", "blocks"}  # no branches/fuse/merge keys


def _broken(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(spec("tiny_streams"))
    change(data)
    return data


def _set(path: list[Any], value: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return change


_DELETE = object()
CROSS = {"type": "cross_cls", "out_channels": 24, "params": {"context": 32, "context_tokens": 5}}
MHSA_24 = {"type": "mhsa", "out_channels": 24, "params": {"heads": 2}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            _set(["stages", 0, "branches"], [{"blocks": [MHSA_24]}]),
            r"stages\[0\]\.branches: expected a list of 2 to 16 branches",
        ),
        (
            _set(["stages", 0, "fuse"], [CROSS]),
            r"stages\[0\]\.fuse: one fuse block per branch: 2, got 1",
        ),
        (
            _set(["stages", 0, "fuse", 0], MHSA_24),
            r"stages\[0\]\.fuse\[0\] \(mhsa\): a fuse block reads the next stream; this type "
            "reads only its own",
        ),
        (
            _set(["stages", 0, "fuse", 0, "params", "context_tokens"], 6),
            r"stages\[0\]\.fuse\[0\] \(cross_cls\): it reads the next stream as a \[32, 6, 1\] "
            r"input \(its parameters say so\), but that stream is \[32, 5, 1\]",
        ),
        (
            _set(["stages", 1, "branches", 0, "blocks"], [MHSA_24, CROSS]),
            r"stages\[1\]\.branches\[0\]\.blocks\[1\] \(cross_cls\): this block reads a second "
            "stream; it can only be one of a branched stage's fuse blocks",
        ),
        (
            _set(["stages", 1], {"blocks": [MHSA_24]}),
            r"stages\[1\]: the network carries 2 streams here \(opened by stages\[0\]\); a plain "
            r"stage takes one: give it branches, or merge the streams at the end of stages\[0\]",
        ),
        (
            _set(["stages", 1, "branches"], [{"blocks": [MHSA_24]}] * 3),
            r"stages\[1\]\.branches: the network carries 2 streams here; give 2 branches",
        ),
        (
            _set(["stages", 1, "merge"], "mean"),
            r"stages\[1\]\.merge: mean joins streams of one shape; they are \[24, 17, 1\], "
            r"\[32, 5, 1\]: use concat, or match their widths",
        ),
        (
            _set(["stages", 1, "merge"], "concat"),
            r"stages\[1\]\.merge: concat joins streams of one map size; they are 17x1, 5x1",
        ),
        (
            _set(["stages", 1, "merge"], "max"),
            r"stages\[1\]\.merge: 'max' is not a merge; choose one of: mean, sum, concat",
        ),
        (
            _set(["stages", 1, "blocks"], [MHSA_24]),
            r"stages\[1\]: unknown key\(s\) blocks; allowed: branches, fuse, merge",
        ),
        (
            _set(["stages", 0, "branches", 0, "branches"], []),
            r"stages\[0\]\.branches\[0\]: unknown key\(s\) branches; allowed: blocks, downsample",
        ),
        (
            _set(["stages", 0, "branches", 0, "blocks"], []),
            r"stages\[0\]\.branches\[0\]: a stage needs at least one block",
        ),
        (
            _set(["stages", 0, "branches"], [{"blocks": [MHSA_24]}] * 17),
            r"stages\[0\]\.branches: expected a list of 2 to 16 branches",
        ),
        (
            _set(["stages", 0, "branches", 1, "blocks", 0, "params", "size"], 10**6),
            r"resize\): parameter 'size'=1000000 is out of range|size=1000000 makes a map",
        ),
    ],
)
def test_bad_streams_are_one_line_errors(change: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message) as e:
        Architecture.from_dict(_broken(change))
    assert "\n" not in str(e.value)


def test_fuse_and_merge_need_branches() -> None:
    data = spec("tiny_merge")
    data["stages"][1]["merge"] = "mean"
    with pytest.raises(SpecError, match=r"stages\[1\]: unknown key\(s\) merge"):
        Architecture.from_dict(data)


def test_one_stream_tools_refuse_several_streams() -> None:
    arch = Architecture.from_dict(spec("tiny_streams"))
    with pytest.raises(SpecError, match="the entropy score takes a network of one stream"):
        deepmad_entropy(arch)
    member = load_space("hybrid").contains(arch)
    assert not member and "stages[0] has branches" in member.reason


def test_layers_know_which_layer_they_read() -> None:
    arch = Architecture.from_dict(spec("tiny_streams"))
    index = {layer.path: i for i, layer in enumerate(arch.layers)}
    source = {layer.path: layer.source for layer in arch.layers}
    assert source["stem"] == -1
    assert source["stages[0].branches[0].blocks[0]"] == index["stem"]
    assert source["stages[0].branches[1].blocks[0]"] == index["stem"]  # not branch 0's last
    assert source["stages[0].fuse[1]"] == index["stages[0].branches[1].blocks[3]"]
    assert source["stages[1].branches[0].blocks[0]"] == index["stages[0].fuse[0]"]
    assert source["head[1]"] == index["stages[1].branches[1].blocks[0]"]
    merge = Architecture.from_dict(spec("tiny_merge"))
    after = next(layer for layer in merge.layers if layer.path == "stages[1].downsample")
    assert merge.layers[after.source].path == "stages[0].branches[0].blocks[0]"


def test_latency_tables_follow_each_stream_s_layout() -> None:
    from archsearch.cost.latency import LatencyModel

    arch = Architecture.from_dict(spec("tiny_streams"))
    # the stem hands on "nhwc", every other block "nchw": the first block of each branch is
    # looked up at "nhwc", the rest at "nchw"
    out = {i: ("nhwc" if layer.path == "stem" else "nchw") for i, layer in enumerate(arch.layers)}
    keys = [
        (layer.block, layer.in_shape, "nchw" if layer.source < 0 else out[layer.source])
        for layer in arch.layers
    ]
    model = LatencyModel(
        "test",
        {k: 1.0 for k in keys},
        {k: out[i] for i, k in enumerate(keys)},
        input_layout="nchw",
    )
    assert model.items(arch) == keys
    assert sum(k[2] == "nhwc" for k in keys) == 2
    assert model.predict(arch, ref_ms=1.0) == pytest.approx(len(arch.layers))


def test_the_blocks_of_every_branch_count_toward_one_bound() -> None:
    branch = {"blocks": [{"type": "identity", "out_channels": 8, "repeat": 1000}]}
    data = {
        "input_shape": [3, 8, 8],
        "stem": {"type": "conv_stem", "out_channels": 8},
        "stages": [{"branches": [branch] * 16}] * 64,  # 1,024,000 blocks in a small file
        "head": {"type": "head"},
    }
    with pytest.raises(SpecError, match="at most 64,000 blocks, every branch's included; this"):
        Architecture.from_dict(data)
    data["stages"] = [{"branches": [branch] * 4}] * 16  # 64,000: within the bound
    assert Architecture.from_dict(data).depth == 64_000


@pytest.mark.parametrize("name", ["naswot", "synflow", "grad_norm", "snip", "jacob_cov", "zen"])
def test_the_proxies_score_several_streams(name: str) -> None:
    from archsearch.evaluators import EVALUATORS

    arch = Architecture.from_dict(spec("tiny_streams"))
    ev = EVALUATORS.create(name, input="3x32x32", batch=4, seed=1)
    first = ev.evaluate([arch])[0][name]
    assert math.isfinite(first) and ev.evaluate([arch])[0][name] == first
