"""Export: every block family through every format, checked against archsearch.build.

The PyTorch source runs in a child Python in which archsearch cannot be imported; TorchScript
files are loaded there with torch.jit.load alone; ONNX files are run by onnxruntime.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import torch

from archsearch import zoo
from archsearch.blocks import BLOCKS
from archsearch.build import build
from archsearch.cost import count
from archsearch.errors import SpecError
from archsearch.export import ExportError, layer_calls, to_onnx, to_source, to_torchscript
from archsearch.spaces import list_spaces, load_space
from archsearch.spec import Architecture

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is needed for the ONNX checks")


def _small(arch: Architecture) -> Architecture:
    """``arch`` at the smallest input of 32, 64, 96, 112 or 224 pixels its shape rules take."""
    for side in (32, 64, 96, 112, 224):
        try:
            return arch.with_input((arch.input_shape[0], side, side), 10)
        except SpecError:
            continue
    return arch


@cache
def covering_networks() -> tuple[Architecture, ...]:
    """Few small networks that together use every registered block family: the zoo at small
    inputs and seeded members of the built-in spaces; for each family the cheapest holder."""
    rng = random.Random(0)
    candidates = [_small(zoo.get(n)) for n in zoo.names()]
    # small networks of several streams (CrossViT-like, and a concat merge)
    fixtures = Path(__file__).parent / "fixtures"
    candidates += [Architecture.load(fixtures / f"tiny_{n}.yaml") for n in ("streams", "merge")]
    for name in list_spaces():
        space = load_space(name)
        candidates += [_small(space.sample(rng)) for _ in range(30)]
    cheapest: dict[str, tuple[int, Architecture]] = {}
    for arch in candidates:
        macs = count(arch).macs
        for layer in arch.layers:
            t = layer.block.type
            if t not in cheapest or macs < cheapest[t][0]:
                cheapest[t] = (macs, arch)
    missing = set(BLOCKS.names()) - set(cheapest)
    assert not missing, f"no zoo network or space member uses {sorted(missing)}: add one"
    chosen: dict[str, Architecture] = {}
    for _, arch in sorted(cheapest.values(), key=lambda v: v[0]):
        if not {layer.block.type for layer in arch.layers} <= {
            layer.block.type for a in chosen.values() for layer in a.layers
        }:
            chosen[arch.digest] = arch
    return tuple(chosen.values())


_CHILD = r"""
import importlib.abc, importlib.util, json, sys

class NoArchsearch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "archsearch" or name.startswith("archsearch."):
            raise ImportError("archsearch is blocked in this process")
        return None

sys.meta_path.insert(0, NoArchsearch())
for name in [m for m in sys.modules if m == "archsearch" or m.startswith("archsearch.")]:
    del sys.modules[name]
import torch
from safetensors.torch import load_file

try:
    import archsearch  # noqa: F401
    raise SystemExit("archsearch is importable in the child")
except ImportError:
    pass

results = {}
for case in json.loads(sys.argv[1]):
    spec = importlib.util.spec_from_file_location("net_" + case["digest"][:12], case["py"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.build().eval()
    params = sum(p.numel() for p in net.parameters())
    net.load_state_dict(load_file(case["weights"]), strict=True)
    x = load_file(case["io"])["x"]
    want = load_file(case["io"])["y"]
    with torch.no_grad():
        y = net(x)
        ts = torch.jit.load(case["ts"])
        y_ts = ts(x)
        try:  # a network with branched stages has no one-tensor stage outputs: refused
            feats = module.Network(features_only=True).eval()
        except ValueError:
            feats = None
        if feats is not None:
            feats.load_state_dict(net.state_dict())
            stages = feats(x)
    results[case["digest"]] = {
        "params": params,
        "diff": float((y - want).abs().max()),
        "ts_diff": float((y_ts - want).abs().max()),
        "stages": len(stages) if feats is not None else None,
        "last_stage_to_head": (
            float((net.head(stages[-1]) - y).abs().max()) if feats is not None else None
        ),
        "spec_digest": module.DIGEST,
    }
print(json.dumps(results))
"""


def test_the_cover_uses_every_family() -> None:
    used = {layer.block.type for a in covering_networks() for layer in a.layers}
    assert used == set(BLOCKS.names())


def test_every_family_exports_to_every_format(tmp_path: Path) -> None:
    exports_match(covering_networks(), tmp_path)


def with_act(arch: Architecture, act: str) -> Architecture | None:
    """``arch`` with activation ``act`` in every block whose family offers it (None: none)."""
    data = arch.to_dict()
    changed = False

    def visit(node: object) -> None:
        nonlocal changed
        if isinstance(node, dict):
            kind = node.get("type")
            if isinstance(kind, str) and kind in BLOCKS.names():
                choices = {p.name: p.choices for p in BLOCKS.get(kind).params}
                if act in (choices.get("act") or ()):
                    node.setdefault("params", {})["act"] = act
                    changed = True
            for v in node.values():
                visit(v)
        elif isinstance(node, list):
            for v in node:
                visit(v)

    visit(data)
    return Architecture.from_dict(data) if changed else None


ACT_FUNCTIONS = {
    "quickgelu": ("QuickGELU", lambda x: x * torch.sigmoid(1.702 * x)),
    "starrelu": ("StarReLU", lambda x: torch.relu(x) ** 2),  # scale 1, bias 0 at init
}


@pytest.mark.parametrize("act", sorted(ACT_FUNCTIONS))
def test_added_activations_build_count_and_export(act: str, tmp_path: Path) -> None:
    module_name, function = ACT_FUNCTIONS[act]
    archs, x = [], torch.randn(64)
    for arch in filter(None, (with_act(n, act) for n in covering_networks())):
        net = build(arch)
        assert sum(p.numel() for p in net.parameters()) == count(arch).params
        acts = [m for m in net.modules() if type(m).__name__ == module_name]
        if acts:  # a block that offers it uses it (a head's act only with a head conv)
            assert torch.allclose(acts[0](x), function(x))
            archs.append(arch)
    assert len(archs) >= 2
    exports_match(tuple(archs[:3]), tmp_path)


def exports_match(archs: tuple[Architecture, ...], tmp_path: Path) -> None:
    """Each network's PyTorch source (run without archsearch), TorchScript and ONNX compute
    what the built module does, with its parameter count and stages."""
    from archsearch.weights import save

    cases = []
    for arch in archs:
        torch.manual_seed(0)
        net = build(arch).eval()
        stem = tmp_path / arch.digest[:12]
        stem.with_suffix(".py").write_text(to_source(arch))
        save(stem.with_suffix(".safetensors"), net.state_dict(), {"kind": "test"})
        x = torch.randn((2, *arch.input_shape))
        with torch.no_grad():
            y = net(x)
        save(tmp_path / f"{arch.digest[:12]}-io.safetensors", {"x": x, "y": y}, {"kind": "io"})
        ts_diff = to_torchscript(net, arch, stem.with_suffix(".pt"))
        assert ts_diff <= 1e-5
        onnx_diff = to_onnx(net, arch, stem.with_suffix(".onnx"))
        assert onnx_diff is not None and onnx_diff <= 1e-4, (arch.summary(), onnx_diff)
        cases.append(
            {
                "digest": arch.digest,
                "py": str(stem.with_suffix(".py")),
                "weights": str(stem.with_suffix(".safetensors")),
                "io": str(tmp_path / f"{arch.digest[:12]}-io.safetensors"),
                "ts": str(stem.with_suffix(".pt")),
            }
        )
    out = subprocess.run(
        [sys.executable, "-I", "-c", _CHILD, json.dumps(cases)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout)
    for arch in archs:
        r = results[arch.digest]
        assert r["params"] == count(arch).params, arch.summary()
        assert r["diff"] <= 1e-5, (arch.summary(), r)
        assert r["ts_diff"] <= 1e-5, (arch.summary(), r)
        if arch.branched:
            assert r["stages"] is None  # features_only is refused: several streams
        else:
            assert r["stages"] == len(arch.stages)
            assert r["last_stage_to_head"] == 0.0
        assert r["spec_digest"] == arch.digest


def test_the_source_reads_like_the_spec() -> None:
    arch = zoo.get("tinyvit_5m")
    text = to_source(arch)
    assert "import archsearch" not in text and "from archsearch" not in text
    assert "TinyViTBlock(dim=128, heads=4, window=7, hidden=512, local_conv=3)" in text
    assert "def mbconv(" in text and "class Residual(nn.Module)" in text
    assert "class ConvNeXtBlock" not in text  # only what the network uses
    for net in (arch, *covering_networks()):
        lines = to_source(net).splitlines()
        assert max(len(line) for line in lines if not line.startswith("    '")) <= 99
    assert Architecture.from_json(_spec_of(text)).digest == arch.digest
    compile(text, "<export>", "exec")


def _spec_of(text: str) -> str:
    namespace: dict[str, object] = {}
    start = text.index("SPEC = (")
    exec(text[start : text.index("\n)\n", start) + 3], namespace)
    return str(namespace["SPEC"])


def test_features_only_returns_every_stage(tmp_path: Path) -> None:
    from archsearch.export import load_source

    arch = next(a for a in covering_networks() if not a.branched)
    path = tmp_path / "net.py"
    path.write_text(to_source(arch, features_only=True))
    module = load_source(path)
    with torch.no_grad():
        stages = module.build().eval()(torch.randn(1, *arch.input_shape))
    assert [tuple(t.shape[1:]) for t in stages] == [
        arch.layers[i].out_shape for i in _last_of_each_stage(arch)
    ]


def test_several_streams_export_and_refuse_features_only(tmp_path: Path) -> None:
    fixtures = Path(__file__).parent / "fixtures"
    merge, streams = (Architecture.load(fixtures / f"tiny_{n}.yaml") for n in ("merge", "streams"))
    assert streams in covering_networks()  # exported with the cover, in every format
    exports_match((merge,), tmp_path)
    net = build(streams).eval()
    with pytest.raises(ExportError, match="features only: the stage outputs of a network with"):
        to_source(streams, features_only=True)
    with pytest.raises(ExportError, match="features only: the stage outputs of a network with"):
        to_torchscript(net, streams, tmp_path / "f.pt", features_only=True)
    assert not (tmp_path / "f.pt").exists()


def _last_of_each_stage(arch: Architecture) -> list[int]:
    out, i = [], 0
    for stage in arch.stages:
        i += stage.depth + (stage.downsample is not None)
        out.append(i)
    return out


def test_a_plugin_family_without_layer_cannot_go_to_source() -> None:
    from archsearch.blocks import get_block

    family = get_block("identity")

    class Plugin(type(family)):  # type: ignore[misc]
        def layer(self, shape, out, p):  # type: ignore[no-untyped-def]
            raise NotImplementedError("block type 'x' defines no layer()")

    arch = Architecture.from_json(zoo.get("resnet50").to_json())  # a copy to patch
    layer = arch.layers[1]
    patched = [*arch.layers]
    patched[1] = layer._replace(family=Plugin())
    object.__setattr__(arch, "_layers", tuple(patched))
    with pytest.raises(ExportError, match=r"stages\[0\]\.blocks\[0\]: block type 'x'"):
        layer_calls(arch)


def test_family_options_export(tmp_path: Path) -> None:
    # MobileNetV3 (mbconv without expansion, hard-sigmoid squeeze-excite with ReLU, the head's
    # conv after pooling) and a ResNeXt with squeeze-excite (grouped conv, SE on the bottleneck).
    data = zoo.get("resnext50_32x4d").to_dict()
    for stage in data["stages"]:
        for block in stage["blocks"]:
            block["params"]["se"] = block["out_channels"] // 16
    archs = (_small(zoo.get("mobilenetv3_large")), _small(Architecture.from_dict(data)))
    for arch in archs:
        assert sum(p.numel() for p in build(arch).parameters()) == count(arch).params
    exports_match(archs, tmp_path)
