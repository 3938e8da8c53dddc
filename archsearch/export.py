"""Networks out of archsearch: PyTorch source, TorchScript, ONNX, weights and the spec.

* :func:`to_source`: one Python file that defines the network with readable ``nn.Module``
  code and imports only torch. Each block is the call its family's
  :meth:`~archsearch.blocks.BlockFamily.layer` names (``mbconv(32, 32, hidden=128, ...)``), and
  the file holds the source of every class and function of :mod:`archsearch.blocks.layers`
  those calls need, found by reading their modules (no archsearch at run time). Its
  ``Network`` has the attributes of :func:`archsearch.build`'s (``stem``, ``stages``: one
  ``nn.Sequential`` per stage, ``head``), so a state dict loads into either.
  ``features_only=True`` makes ``forward`` return the stage outputs (as timm's backbones do).
* :func:`to_torchscript` (traced, loadable with ``torch.jit.load`` alone) and :func:`to_onnx`
  (opset :data:`ONNX_OPSET`, dynamic batch axis), each checked against the torch module on
  random input before it is written.

Files are written atomically (:func:`archsearch.files.atomic_path`): a failed export leaves
any earlier file of that name intact.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from archsearch.blocks import LayerCall
from archsearch.errors import UserError
from archsearch.files import atomic_path

if TYPE_CHECKING:
    import torch
    from torch import nn

    from archsearch.spec import Architecture

FORMATS = ("py", "torchscript", "onnx", "safetensors", "yaml", "json")
"""What ``archsearch export --format`` writes."""
SUFFIXES = {
    ".py": "py",
    ".pt": "torchscript",
    ".ts": "torchscript",
    ".onnx": "onnx",
    ".safetensors": "safetensors",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
}
EXTENSION = {"py": ".py", "torchscript": ".pt", "onnx": ".onnx", "safetensors": ".safetensors"}
EXTENSION |= {"yaml": ".yaml", "json": ".json"}
ONNX_OPSET = 17
"""The ONNX opset archsearch exports to (torch's TorchScript-based exporter)."""
ONNX_TOLERANCE = 1e-4
TORCHSCRIPT_TOLERANCE = 1e-5
_LAYERS = "archsearch.blocks.layers"


class ExportError(UserError):
    """A network that cannot be written in the asked format (the reason in one line)."""


# -- PyTorch source ------------------------------------------------------------------------


@dataclass
class _Module:
    """A module's top-level definitions and imports, read from its source."""

    defs: dict[str, ast.stmt]
    imports: dict[str, tuple[str, str | None, str]]  # bound name -> (module, name, asname)
    source: str


_PARSED: dict[str, _Module] = {}


def _parse(module: ModuleType) -> _Module:
    name = module.__name__
    if name not in _PARSED:
        source = inspect.getsource(module)
        defs: dict[str, ast.stmt] = {}
        imports: dict[str, tuple[str, str | None, str]] = {}
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defs[node.name] = node
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        defs[t.id] = node
            elif isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
                for a in node.names:
                    imports[a.asname or a.name] = (node.module, a.name, a.asname or a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    bound = a.asname or a.name.split(".")[0]
                    imports[bound] = (a.name, None, bound)
        _PARSED[name] = _Module(defs, imports, source)
    return _PARSED[name]


def _names(node: ast.AST) -> Iterator[str]:
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            yield n.id


def _is_torch(module: str) -> bool:
    return module == "torch" or module.startswith("torch.")


class _Closure:
    """The definitions (in dependency order) and imports a set of layer constructors needs."""

    def __init__(self) -> None:
        self.order: list[tuple[str, str]] = []  # (module, name), dependencies first
        self.where: dict[str, str] = {}  # exported name -> defining module
        self.imports: set[tuple[str, str | None, str]] = set()

    def add(self, module_name: str, name: str, *, needed_by: str) -> None:
        if self.where.get(name) == module_name:
            return
        if name in self.where:
            raise ExportError(
                f"{name!r} is defined in both {self.where[name]} and {module_name}; the "
                "exported file needs one name for each"
            )
        if not module_name.startswith(_LAYERS):
            raise ExportError(
                f"{needed_by} uses {module_name}.{name}, which is not a torch-only layer "
                f"(only {_LAYERS} and torch can be exported as source)"
            )
        mod = _parse(sys.modules[module_name])
        node = mod.defs.get(name)
        if node is None:
            raise ExportError(f"{module_name}.{name} is not defined at its module's top level")
        self.where[name] = module_name
        for ref in dict.fromkeys(_names(node)):
            if ref == name or hasattr(builtins, ref):
                continue
            if ref in mod.defs:
                self.add(module_name, ref, needed_by=name)
            elif ref in mod.imports:
                source, attr, bound = mod.imports[ref]
                if _is_torch(source) or source.split(".")[0] in sys.stdlib_module_names:
                    self.imports.add((source, attr, bound))
                elif attr is not None and source.startswith(_LAYERS):
                    __import__(source)
                    self.add(source, attr, needed_by=name)
                else:
                    raise ExportError(
                        f"{name} ({module_name}) imports {source}; an exported network may "
                        "import only torch and the standard library"
                    )
        self.order.append((module_name, name))

    def source(self) -> str:
        chunks = []
        for module_name, name in self.order:
            mod = _PARSED[module_name]
            node = mod.defs[name]
            text = ast.get_source_segment(mod.source, node, padded=True) or ""
            deco = getattr(node, "decorator_list", [])
            if deco:  # get_source_segment starts at the def, after the decorators
                first = min(d.lineno for d in deco)
                lines = mod.source.splitlines()
                text = "\n".join(lines[first - 1 : node.end_lineno])
            chunks.append(text)
        return "\n\n\n".join(chunks)

    def import_lines(self) -> list[str]:
        plain = sorted({(m, b) for m, a, b in self.imports if a is None})
        lines = [f"import {m}" if m.split(".")[0] == b else f"import {m} as {b}" for m, b in plain]
        froms: dict[str, list[str]] = {}
        for m, a, b in self.imports:
            if a is not None:
                froms.setdefault(m, []).append(a if a == b else f"{a} as {b}")
        lines += [f"from {m} import {', '.join(sorted(set(n)))}" for m, n in sorted(froms.items())]
        stdlib = [s for s in lines if not _is_torch(s.split()[1])]
        torch_lines = [s for s in lines if _is_torch(s.split()[1])]
        return [*stdlib, *([""] if stdlib else []), *torch_lines]


def _torch_nn_name(fn: Callable[..., Any]) -> str | None:
    from torch import nn

    name = getattr(fn, "__name__", "")
    return f"nn.{name}" if getattr(nn, name, None) is fn else None


def _arguments(call: LayerCall) -> list[tuple[str | None, Any]]:
    """The call's arguments as ``(keyword or None, value)``, by keyword where the
    constructor's signature names them."""
    try:
        bound = inspect.signature(call.fn).bind(*call.args, **call.kwargs)
    except (TypeError, ValueError):
        return [(None, a) for a in call.args] + list(call.kwargs.items())
    out: list[tuple[str | None, Any]] = []
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            out += [(None, v) for v in value]
        elif kind is inspect.Parameter.VAR_KEYWORD:
            out += list(value.items())
        else:
            out.append((None if kind is inspect.Parameter.POSITIONAL_ONLY else name, value))
    return out


def _argument(key: str | None, value: Any, pad: str) -> list[str]:
    """One argument on one line, or a long list or tuple one element a line."""
    head = f"{key}=" if key else ""
    one = f"{pad}{head}{value!r},"
    if len(one) <= 99 or not isinstance(value, list | tuple) or not value:
        return [one]
    open_, close = ("[", "]") if isinstance(value, list) else ("(", ")")
    return [f"{pad}{head}{open_}", *(f"{pad}    {v!r}," for v in value), f"{pad}{close},"]


def _call(prefix: str, name: str, call: LayerCall, indent: int, suffix: str = "") -> list[str]:
    """``{prefix}name(args){suffix}`` on one line if it fits in 99 columns, else one argument
    a line; a ``  # comment`` in ``suffix`` is kept where it fits."""
    args = _arguments(call)
    parts = [f"{k}={v!r}" if k else repr(v) for k, v in args]
    pad = " " * indent
    end, _, comment = suffix.partition("  # ")
    one = f"{pad}{prefix}{name}({', '.join(parts)}){end}"
    if len(one) <= 99:
        return [one + (f"  # {comment}" if comment and len(one) + len(comment) <= 95 else "")]
    inner = [line for k, v in args for line in _argument(k, v, pad + "    ")]
    return [f"{pad}{prefix}{name}(", *inner, f"{pad}){end}"]


def layer_calls(arch: Architecture) -> list[LayerCall]:
    """Each block's :class:`~archsearch.blocks.LayerCall`, in ``arch.layers`` order.

    Raises:
        ExportError: a family (a plugin's) defines no ``layer()``.
    """
    out = []
    for layer in arch.layers:
        try:
            out.append(
                layer.family.layer(layer.in_shape, layer.block.out_channels, layer.block.params)
            )
        except NotImplementedError as e:
            raise ExportError(f"{layer.path}: {e}") from None
    return out


def to_source(arch: Architecture, *, features_only: bool = False) -> str:
    """A Python file that defines ``arch`` as ``Network`` and imports only torch.

    ``Network(features_only=...)`` defaults to ``features_only``. ``build()`` returns a
    fresh ``Network``; running the file prints its parameter count and output shapes.

    Raises:
        ExportError: a block's constructor is not a torch-only layer.
    """
    from archsearch._version import __version__
    from archsearch.cost import count

    calls = layer_calls(arch)
    closure = _Closure()
    names: list[str] = []
    for layer, call in zip(arch.layers, calls, strict=True):
        nn_name = _torch_nn_name(call.fn)
        if nn_name is not None:
            names.append(nn_name)
            continue
        module = getattr(call.fn, "__module__", "") or ""
        name = getattr(call.fn, "__qualname__", "")
        if "." in name or not name:
            raise ExportError(
                f"{layer.path} ({layer.block.type}): {call.fn!r} is not a top-level layer"
            )
        closure.add(module, name, needed_by=f"{layer.path} ({layer.block.type})")
        names.append(name)
    closure.imports |= {("torch", "Tensor", "Tensor"), ("torch", "nn", "nn")}

    cost = count(arch)
    c, h, w = arch.input_shape
    body: list[str] = []
    placed = list(zip(arch.layers, calls, names, strict=True))
    stem_layer, stem_call, stem_name = placed[0]
    body += _call("self.stem = ", stem_name, stem_call, 8, f"  # -> {_fmt(stem_layer.out_shape)}")
    multi = arch.branched
    if multi:
        if features_only:
            raise ExportError(_ONE_STREAM)
        for name in ("Stream", "Branches", "MeanHeads"):
            closure.add(f"{_LAYERS}.network", name, needed_by="a network with branched stages")
        body += _multi_stream_body(arch, placed)
    else:
        body += _one_stream_body(arch, placed)

    import textwrap

    summary = textwrap.fill(arch.summary(), 96, break_on_hyphens=False)
    header = f'''"""{summary}

Exported by archsearch {__version__}: architecture
{arch.digest}.
Input {c}x{h}x{w}, {arch.num_classes} classes: {cost.params:,} parameters, {cost.macs:,} MACs
({cost.macs / 1e9:.3f} GFLOPs; one multiply-accumulate counts as one FLOP).

This file needs only torch. ``build()`` returns the network, randomly initialised; its state
dict has the keys of ``archsearch.build(spec)``'s, so weights exported by
``archsearch export REF --format safetensors`` load with
``model.load_state_dict(safetensors.torch.load_file(path))``. ``Network(features_only=True)``
returns the output of every stage instead of the logits.
"""'''
    spec = json.dumps(arch.to_dict(), sort_keys=True)
    spec_lines = [f"    {spec[i : i + 88]!r}" for i in range(0, len(spec), 88)]
    lines = [
        header,
        "",
        "from __future__ import annotations",
        "",
        *closure.import_lines(),
        "",
        f"INPUT_SHAPE = {tuple(arch.input_shape)!r}",
        f"NUM_CLASSES = {arch.num_classes}",
        f"DIGEST = {arch.digest!r}",
        "",
        "",
        closure.source(),
        "",
        "",
        "class Network(nn.Module):",
        f'    """{_docstring(arch)}"""',
        "",
        f"    def __init__(self, features_only: bool = {features_only!r}) -> None:",
        "        super().__init__()",
        "        self.features_only = features_only",
        *body,
        "",
        *(_MULTI_STREAM_FORWARD if multi else _FORWARD),
        "",
        "",
        f"def build(features_only: bool = {features_only!r}) -> Network:",
        '    """The network, randomly initialised."""',
        "    return Network(features_only=features_only)",
        "",
        "",
        "# archsearch's JSON spec of the network (archsearch count and build read it)",
        "SPEC = (",
        *spec_lines,
        ")",
        "",
        "",
        'if __name__ == "__main__":',
        "    import torch",
        "",
        "    model = build().eval()",
        "    n = sum(p.numel() for p in model.parameters())",
        "    with torch.no_grad():",
        "        y = model(torch.randn(1, *INPUT_SHAPE))",
        "    shapes = [tuple(t.shape) for t in y] if isinstance(y, list) else tuple(y.shape)",
        '    print(f"{DIGEST[:12]}: {n:,} parameters, output {shapes}")',
        "",
    ]
    return "\n".join(lines)


_FORWARD = [
    "    def forward_features(self, x: Tensor) -> list[Tensor]:",
    '        """The output of each stage, in order."""',
    "        x = self.stem(x)",
    "        features = []",
    "        for stage in self.stages:",
    "            x = stage(x)",
    "            features.append(x)",
    "        return features",
    "",
    "    def forward(self, x: Tensor) -> Tensor | list[Tensor]:",
    "        features = self.forward_features(x)",
    "        if self.features_only:",
    "            return features",
    "        return self.head(features[-1])",
]
_MULTI_STREAM_FORWARD = [
    "    def forward_features(self, x: Tensor) -> list[Tensor]:",
    '        """The streams the last stage outputs."""',
    "        xs = [self.stem(x)]",
    "        for stage in self.stages:",
    "            xs = stage(xs)",
    "        return xs",
    "",
    "    def forward(self, x: Tensor) -> Tensor:",
    "        return self.head(self.forward_features(x))",
]
_ONE_STREAM = (
    "features only: the stage outputs of a network with branched stages are several streams; "
    "export the whole network instead"
)


def _one_stream_body(arch: Architecture, placed: list[tuple[Any, LayerCall, str]]) -> list[str]:
    """``self.stages`` (one ``nn.Sequential`` per stage) and ``self.head``."""
    body = ["        self.stages = nn.ModuleList(", "            ["]
    k = 1
    for i, stage in enumerate(arch.stages):
        n = len(stage.all_blocks())
        types = "/".join(sorted({b.type for b in stage.blocks}))
        out = _fmt(placed[k + n - 1][0].out_shape)
        line = f"                nn.Sequential(  # stage {i + 1}: {stage.depth} x {types} -> {out}"
        body.append(line if len(line) <= 99 else line[:96] + "...")
        for layer, call, name in placed[k : k + n]:
            body += _call("", name, call, 20, f",  # {layer.path}")
        body.append("                ),")
        k += n
    body += ["            ]", "        )"]
    _, head_call, head_name = placed[k]
    return body + _call("self.head = ", head_name, head_call, 8)


def _multi_stream_body(arch: Architecture, placed: list[tuple[Any, LayerCall, str]]) -> list[str]:
    """``self.stages`` and ``self.head`` of a network with branched stages, as
    :func:`archsearch.build` composes them (``Stream``, ``Branches``, ``MeanHeads``)."""
    rest = iter(placed[1:])

    def calls(n: int, indent: int) -> list[str]:
        lines = []
        for _ in range(n):
            layer, call, name = next(rest)
            lines += _call("", name, call, indent, f",  # {layer.path}")
        return lines

    body = [
        "        if features_only:  # several streams leave each branched stage",
        '            raise ValueError("features_only takes a network of one stream")',
        "        self.stages = nn.ModuleList(",
        "            [",
    ]
    for i, stage in enumerate(arch.stages):
        if not stage.branches:
            body.append(f"                Stream(  # stage {i + 1}")
            body += calls(len(stage.all_blocks()), 20)
            body.append("                ),")
            continue
        body += [
            f"                Branches(  # stage {i + 1}: {len(stage.branches)} branches",
            "                    [",
        ]
        for b, branch in enumerate(stage.branches):
            body.append(f"                        nn.Sequential(  # branch {b + 1}")
            body += calls(len(branch.all_blocks()), 28)
            body.append("                        ),")
        body += ["                    ],", "                    ["]
        body += calls(len(stage.fuse), 24)
        body += ["                    ],", f"                    {stage.merge or 'none'!r},"]
        body.append("                ),")
    body += ["            ]", "        )", "        self.head = MeanHeads(", "            ["]
    for layer, call, name in rest:  # one head per stream
        body += _call("", name, call, 16, f",  # {layer.path}")
    body += ["            ]", "        )"]
    return body


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in shape)


def _docstring(arch: Architecture) -> str:
    import textwrap

    text = f"Architecture {arch.digest[:12]}: {arch.summary()}."
    return textwrap.fill(text, 95, subsequent_indent="    ", break_on_hyphens=False) + (
        "\n    " if len(text) > 88 else ""
    )


def load_source(path: str | Path, name: str = "archsearch_export") -> ModuleType:
    """Imports an exported source file as a module (for tests and users' scripts)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, str(path))
    if spec is None or spec.loader is None:
        raise ExportError(f"{str(path)!r} is not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- TorchScript and ONNX --------------------------------------------------------------------


def _stage_outputs(net: nn.Module) -> nn.Module:
    from archsearch.blocks.layers import MultiStreamNetwork, Network, StageOutputs

    if not isinstance(net, Network):
        raise ExportError("features only: the module is not a network archsearch.build made")
    if isinstance(net, MultiStreamNetwork):
        raise ExportError(_ONE_STREAM)
    return StageOutputs(net)


def _outputs(y: Any) -> list[torch.Tensor]:
    return list(y) if isinstance(y, tuple | list) else [y]


def _max_diff(a: Any, b: Any) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(_outputs(a), _outputs(b), strict=True))


def _example(arch: Architecture, batch: int, seed: int = 0) -> torch.Tensor:
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randn((batch, *arch.input_shape), generator=g)


def to_torchscript(
    net: nn.Module, arch: Architecture, path: str | Path, *, features_only: bool = False
) -> float:
    """Traces ``net`` (in eval mode) and saves it; returns the largest absolute difference to
    ``net`` on a random batch of 2 (traced at batch 1: the batch axis stays free).

    Raises:
        ExportError: tracing fails, or the traced module differs by more than
            :data:`TORCHSCRIPT_TOLERANCE`.
    """
    import torch

    module = (_stage_outputs(net) if features_only else net).eval()
    try:
        with torch.no_grad(), _quiet():
            example = _example(arch, 1)
            traced = torch.jit.trace(module, example, check_trace=False)  # type: ignore[no-untyped-call]
    except Exception as e:
        raise ExportError(f"TorchScript tracing failed: {_first_line(e)}") from None
    with atomic_path(path) as tmp:
        traced.save(str(tmp))
        loaded = torch.jit.load(str(tmp))  # type: ignore[no-untyped-call]
        x = _example(arch, 2, seed=1)
        with torch.no_grad():
            diff = _max_diff(loaded(x), module(x))
        if not diff <= TORCHSCRIPT_TOLERANCE:
            raise ExportError(
                f"the TorchScript module differs from torch by {diff:.3g} (at most "
                f"{TORCHSCRIPT_TOLERANCE:g}): a block's control flow depends on its input"
            )
    return diff


def to_onnx(
    net: nn.Module,
    arch: Architecture,
    path: str | Path,
    *,
    features_only: bool = False,
    opset: int = ONNX_OPSET,
) -> float | None:
    """Exports ``net`` (eval mode) to ONNX with a dynamic batch axis and, where onnxruntime is
    installed, returns the largest absolute difference of its outputs to torch's on a random
    batch of 2 (None without onnxruntime).

    Raises:
        ExportError: a block's operator has no ONNX form at ``opset`` (the block type and the
            operator named), or the outputs differ by more than :data:`ONNX_TOLERANCE`.
    """
    import torch

    module = (_stage_outputs(net) if features_only else net).eval()
    n_out = len(arch.stages) if features_only else 1
    outputs = [f"stage{i + 1}" for i in range(n_out)] if features_only else ["logits"]
    axes = {name: {0: "batch"} for name in ["images", *outputs]}
    with atomic_path(path) as tmp:
        try:
            with torch.no_grad(), _quiet():
                torch.onnx.export(
                    module,
                    (_example(arch, 1),),
                    str(tmp),
                    dynamo=False,
                    opset_version=opset,
                    input_names=["images"],
                    output_names=outputs,
                    dynamic_axes=axes,
                )
        except Exception as e:
            raise ExportError(_onnx_failure(arch, e, opset)) from None
        diff = _onnx_diff(tmp, module, arch)
        if diff is not None and not diff <= ONNX_TOLERANCE:
            raise ExportError(
                f"the ONNX model differs from torch by {diff:.3g} (at most {ONNX_TOLERANCE:g})"
            )
    return diff


def _onnx_diff(path: Path, module: nn.Module, arch: Architecture) -> float | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import torch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = _example(arch, 2, seed=1)
    got = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        want = _outputs(module(x))
    return max(float(abs(torch.from_numpy(g) - w).max()) for g, w in zip(got, want, strict=True))


def _onnx_failure(arch: Architecture, e: BaseException, opset: int) -> str:
    """Names the first block type whose own export fails, and the operator, in one line."""
    import torch

    op = _operator(e)
    for layer in arch.layers:
        block = layer.family.build(layer.in_shape, layer.block.out_channels, layer.block.params)
        x = torch.randn((1, *layer.in_shape))
        try:
            with torch.no_grad(), _quiet(), tempfile.TemporaryDirectory() as d:
                torch.onnx.export(
                    block.eval(),
                    (x,),
                    os.path.join(d, "b.onnx"),
                    dynamo=False,
                    opset_version=opset,
                )
        except Exception as inner:
            op = _operator(inner) or op
            return (
                f"{layer.path} ({layer.block.type}) cannot be exported to ONNX opset {opset}: "
                f"{'operator ' + op if op else _first_line(inner)}"
            )
    return f"ONNX export failed at opset {opset}: {op or _first_line(e)}"


def _operator(e: BaseException) -> str | None:
    m = re.search(r"operator '?([\w:.]+)'?", str(e))
    return m.group(1) if m else None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


@contextmanager
def _quiet() -> Iterator[None]:
    """Silences the exporters' warnings (tracer notes about Python values in the graph)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
