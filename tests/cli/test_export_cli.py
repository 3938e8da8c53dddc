"""`archsearch export`: formats, weights from a supernet or a file, one-line errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

import archsearch
from archsearch.export import load_source
from archsearch.files import atomic_path
from archsearch.spaces import load_space
from archsearch.weights import save_module
from tests.cli.test_cli import invoke
from tests.cli.test_supernet_cli import TINY, trained  # noqa: F401 (the fixture)


def test_py_is_the_default_and_reports_the_file(tmp_path: Path) -> None:
    out = tmp_path / "net.py"
    code, stdout, err = invoke("export", "zoo:resnet50", "--out", str(out))
    assert code == 0, err
    arch = archsearch.zoo.get("resnet50")
    assert (
        stdout.strip()
        == f"{arch.digest[:12]} -> {out} (py: imports only torch; python it to check)"
    )
    module = load_source(out)
    assert sum(p.numel() for p in module.build().parameters()) == archsearch.count(arch).params


def test_the_format_follows_the_suffix(tmp_path: Path) -> None:
    for suffix, check in (
        (".yaml", lambda p: archsearch.Architecture.load(p)),
        (".json", lambda p: archsearch.Architecture.from_json(p.read_text())),
    ):
        out = tmp_path / f"spec{suffix}"
        code, _, err = invoke("export", "zoo:deit_ti", "--out", str(out))
        assert code == 0, err
        assert check(out).digest == archsearch.zoo.get("deit_ti").digest


def test_a_spec_file_and_a_digest_are_references(tmp_path: Path, sqlite_url: str) -> None:
    arch = load_space(TINY).sample(random.Random(0))
    spec = tmp_path / "a.json"
    spec.write_text(arch.to_json())
    code, _, err = invoke("export", str(spec), "--out", str(tmp_path / "a.py"))
    assert code == 0, err
    code, _, err = invoke("evaluate", str(spec), "--score", "entropy", db=sqlite_url)
    assert code == 0, err  # now the database holds it
    out = tmp_path / "b.py"
    code, _, err = invoke("export", arch.digest[:8], "--out", str(out), db=sqlite_url)
    assert code == 0, err
    assert out.read_text() == (tmp_path / "a.py").read_text()


def test_onnx_from_a_weights_file_computes_what_the_weights_do(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    arch = load_space(TINY).sample(random.Random(1))
    torch.manual_seed(3)
    net = archsearch.build(arch).eval()
    weights = tmp_path / "w.safetensors"
    save_module(weights, net, arch)
    out = tmp_path / "w.onnx"
    code, stdout, err = invoke("export", str(weights), "--out", str(out), "--features-only")
    assert code == 0, err
    assert "opset 17, dynamic batch; weights of w.safetensors; max |difference| to torch" in stdout
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == [
        f"stage{i + 1}" for i in range(len(arch.stages))
    ]
    x = torch.randn(3, *arch.input_shape)
    got = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        want = archsearch.load_weights(weights)(x)  # logits: the last stage feeds the head
        last = torch.from_numpy(got[-1])
        assert torch.allclose(archsearch.load_weights(weights).head(last), want, atol=1e-4)


def test_weights_from_a_supernet_are_its_members(
    trained: tuple[str, str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    url, path, _ = trained
    arch = load_space(TINY).sample(random.Random(2))
    spec = tmp_path / "m.json"
    spec.write_text(arch.to_json())
    out = tmp_path / "m.safetensors"
    code, stdout, err = invoke("export", str(spec), "--supernet", "1", "--out", str(out), db=url)
    assert code == 0, err
    assert "supernet 1's weights" in stdout
    code, _, err = invoke(
        "supernet", "extract", path, str(spec), "--out", str(tmp_path / "e.safetensors"), db=url
    )
    assert code == 0, err
    a, b = archsearch.load_weights(out), archsearch.load_weights(tmp_path / "e.safetensors")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    # the source file loads those weights
    code, _, err = invoke("export", str(spec), "--out", str(tmp_path / "m.py"))
    assert code == 0, err
    from safetensors.torch import load_file

    module = load_source(tmp_path / "m.py").build().eval()
    module.load_state_dict(load_file(out), strict=True)
    x = torch.randn(2, *arch.input_shape)
    with torch.no_grad():
        assert torch.allclose(module(x), a(x), atol=1e-5)


def test_torchscript_loads_with_torch_alone(tmp_path: Path) -> None:
    out = tmp_path / "n.pt"
    code, stdout, err = invoke("export", "zoo:poolformer_s12", "--out", str(out), "--seed", "4")
    assert code == 0, err
    assert "random initial weights (seed 4); torch.jit.load" in stdout
    loaded = torch.jit.load(str(out))
    with torch.no_grad():
        assert loaded(torch.randn(2, 3, 224, 224)).shape == (2, 1000)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "pdf"], "--format=pdf: not a format; use one of py, torchscript, onnx"),
        (["--out", "x.txt"], "--out=x.txt: cannot tell the format from '.txt'"),
        (
            ["--format", "safetensors"],
            "--format safetensors writes trained weights: pass --supernet",
        ),
        (
            ["--format", "onnx", "--opset", "99"],
            "--opset=99: the ONNX exporter writes opsets 14 to 20",
        ),
        (["--opset", "17"], "--opset=17 applies to --format onnx only, not py"),
        (["--format", "yaml", "--features-only"], "--features-only changes the network's output"),
        (["--supernet", "1", "--weights", "w.safetensors"], "--supernet and --weights both"),
        (["--supernet", "1"], "--format py writes no weights; add --format safetensors"),
        (["-f", "onnx", "--seed", "99999999999999999999"], "Invalid value for '--seed'"),
    ],
)
def test_bad_options_are_one_line_with_exit_2(
    args: list[str], message: str, tmp_path: Path
) -> None:
    code, stdout, err = invoke("export", "zoo:resnet50", *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not list(Path.cwd().glob("*.py.*"))


def test_bad_references_are_one_line_with_exit_2(tmp_path: Path, sqlite_url: str) -> None:
    for ref, message in (
        ("zoo:nope", "nope"),
        ("missing.yaml", "missing.yaml"),
        ("abcdef123456", "abcdef123456"),
        (str(tmp_path / "none.safetensors"), "does not exist"),
    ):
        code, _, err = invoke("export", ref, "--out", str(tmp_path / "x.onnx"), db=sqlite_url)
        assert code == 2, (ref, err)
        assert message in err and len(err.strip().splitlines()) == 1, err
    pickle = tmp_path / "p.safetensors"
    torch.save({"x": torch.zeros(1)}, pickle)
    code, _, err = invoke("export", str(pickle), "--out", str(tmp_path / "x.onnx"))
    assert code == 2 and "pickle file" in err


def test_a_failed_write_keeps_the_earlier_file(tmp_path: Path) -> None:
    target = tmp_path / "net.onnx"
    target.write_text("earlier")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("export failed")
    assert target.read_text() == "earlier"
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"]


def test_the_weights_must_be_the_reference_s(tmp_path: Path) -> None:
    arch = load_space(TINY).sample(random.Random(1))
    other = load_space(TINY).sample(random.Random(5))
    assert arch.digest != other.digest
    weights = tmp_path / "w.safetensors"
    save_module(weights, archsearch.build(arch), arch)
    spec = tmp_path / "o.json"
    spec.write_text(json.dumps(other.to_dict()))
    code, _, err = invoke("export", str(spec), "--weights", str(weights), "--format", "onnx")
    assert code == 2
    assert f"its weights are for {arch.digest[:12]}, not {other.digest[:12]}" in err
