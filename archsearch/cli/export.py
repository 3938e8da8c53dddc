"""``archsearch export``: a network as PyTorch source, TorchScript, ONNX, weights or its spec."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from archsearch.cli.common import DbOption, resolve_arch
from archsearch.errors import UserError
from archsearch.limits import MAX_INT

if TYPE_CHECKING:
    from torch import nn

    from archsearch.spec import Architecture


def export(
    ref: Annotated[
        str,
        typer.Argument(
            help="A digest (6+ characters) in the database, a spec file (.yaml, .json), "
            "zoo:NAME, or a weights file (.safetensors, from supernet extract or export)."
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="py, torchscript, onnx, safetensors, yaml or json. Default: from --out's "
            "suffix (.py .pt .onnx .safetensors .yaml .json), else py.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="The file to write. Default: <digest[:12]>.<format's suffix>."),
    ] = None,
    supernet: Annotated[
        str | None,
        typer.Option(help="Take the weights from this trained supernet (its id or file)."),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(help="Take the weights from this file (supernet extract's safetensors)."),
    ] = None,
    features_only: Annotated[
        bool,
        typer.Option(
            "--features-only",
            help="The network returns every stage's output instead of the logits (a backbone "
            "for detection or segmentation heads).",
        ),
    ] = False,
    opset: Annotated[
        int | None, typer.Option(help="ONNX opset (14-20). [default: 17]", show_default=False)
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_INT, help="Seed of the initial weights, when none given.")
    ] = 0,
    db: DbOption = None,
) -> None:
    """Write a network out of archsearch, checked before it is written.

    py: one file defining the network as readable nn.Module code that imports only torch
    (its state dict has archsearch.build's keys). torchscript: traced, loadable with
    torch.jit.load alone. onnx: opset 17 by default, dynamic batch axis, outputs compared with
    torch through onnxruntime. safetensors: the trained weights (needs --supernet or --weights),
    loadable into either without unpickling. yaml/json: the spec. Without --supernet or
    --weights, TorchScript and ONNX carry seeded random weights (for latency or your training).
    """
    from archsearch import export as ex
    from archsearch.files import write_atomic

    kind = _format(fmt, out)
    if opset is not None and not 14 <= opset <= 20:
        raise UserError(f"--opset={opset}: the ONNX exporter writes opsets 14 to 20; use 17")
    if opset is not None and kind != "onnx":
        raise UserError(f"--opset={opset} applies to --format onnx only, not {kind}")
    if supernet is not None and weights is not None:
        raise UserError("--supernet and --weights both give the weights; pass one")
    if features_only and kind in ("safetensors", "yaml", "json"):
        raise UserError(f"--features-only changes the network's output; --format {kind} has none")
    from_file = ref.endswith(".safetensors")
    if from_file and (supernet is not None or weights is not None):
        raise UserError(
            f"{ref}: a weights file carries its own weights; drop --supernet/--weights"
        )
    arch = None if from_file else resolve_arch(ref, db)
    trained = from_file or supernet is not None or weights is not None
    if kind in ("py", "yaml", "json") and (supernet is not None or weights is not None):
        raise UserError(
            f"--format {kind} writes no weights; add --format safetensors for them (the "
            "exported source loads that file), or drop --supernet/--weights"
        )
    if kind == "safetensors" and not trained:
        raise UserError(
            "--format safetensors writes trained weights: pass --supernet ID (a member's "
            "inherited weights) or --weights FILE"
        )

    net: nn.Module | None = None
    source = ""
    if kind in ("torchscript", "onnx", "safetensors") or from_file:
        arch, net, source = _network(ref, arch, supernet, weights, seed, db)
    assert arch is not None
    target = out or Path(f"{arch.digest[:12]}{ex.EXTENSION[kind]}")

    if kind == "py":
        write_atomic(target, ex.to_source(arch, features_only=features_only))
        detail = "imports only torch; python it to check"
    elif kind in ("yaml", "json"):
        write_atomic(target, arch.to_yaml() if kind == "yaml" else arch.to_json(indent=2) + "\n")
        detail = "archsearch count/build read it"
    elif kind == "safetensors":
        from archsearch.weights import save_module

        assert net is not None
        save_module(target, net, arch, source=source)
        detail = f"{source}; load with archsearch.load_weights or load_state_dict"
    elif kind == "torchscript":
        assert net is not None
        diff = ex.to_torchscript(net, arch, target, features_only=features_only)
        detail = f"{source}; torch.jit.load; max |difference| to torch {diff:.1e}"
    else:
        assert net is not None
        level = opset or ex.ONNX_OPSET
        got = ex.to_onnx(net, arch, target, features_only=features_only, opset=level)
        checked = (
            f"max |difference| to torch {got:.1e} (onnxruntime)"
            if got is not None
            else "not checked: onnxruntime is not installed (pip install 'archsearch[onnx]')"
        )
        detail = f"opset {level}, dynamic batch; {source}; {checked}"
    typer.echo(f"{arch.digest[:12]} -> {target} ({kind}: {detail})")


def _format(fmt: str | None, out: Path | None) -> str:
    from archsearch.export import FORMATS, SUFFIXES

    if fmt is not None:
        kind = fmt.lower()
        if kind not in FORMATS:
            raise UserError(f"--format={fmt}: not a format; use one of {', '.join(FORMATS)}")
        return kind
    if out is None:
        return "py"
    guessed = SUFFIXES.get(out.suffix.lower())
    if guessed is None:
        raise UserError(
            f"--out={out}: cannot tell the format from {out.suffix or 'no suffix'!r}; pass "
            f"--format ({', '.join(FORMATS)})"
        )
    return guessed


def _network(
    ref: str,
    arch: Architecture | None,
    supernet: str | None,
    weights: Path | None,
    seed: int,
    db: str | None,
) -> tuple[Architecture, nn.Module, str]:
    """The architecture and its module: with the weights asked for, else seeded random ones."""
    import torch

    from archsearch.build import build
    from archsearch.weights import load_network

    if ref.endswith(".safetensors") or weights is not None:
        path = ref if weights is None else weights
        spec, net = load_network(path)
        if arch is not None and arch.digest != spec.digest:
            raise UserError(
                f"--weights={weights}: its weights are for {spec.digest[:12]}, not "
                f"{arch.digest[:12]}"
            )
        return spec, net, f"weights of {Path(path).name}"
    assert arch is not None
    if supernet is not None:
        from archsearch.cli.supernet import resolve_checkpoint
        from archsearch.supernet import load_checkpoint

        ck = load_checkpoint(resolve_checkpoint(supernet, db))
        member = ck.supernet.check_member(arch)
        return member, ck.supernet.extract(arch).eval(), f"supernet {supernet}'s weights"
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = build(arch)
    return arch, net.eval(), f"random initial weights (seed {seed})"
