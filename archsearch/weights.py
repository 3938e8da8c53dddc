"""Tensor files that cannot run code: safetensors with JSON metadata.

Every file of weights archsearch writes (supernet checkpoints, extracted members) is a
`safetensors <https://huggingface.co/docs/safetensors>`_ file: a JSON header that names each
tensor's dtype, shape and byte range, then the raw bytes. Reading one parses JSON and copies
bytes; nothing is unpickled, so a crafted file can at worst be refused. What is not a tensor
(configuration, training curve, random states, the network's spec) goes into the header's
metadata as JSON under the key ``archsearch``.

Pickle files (``torch.save``'s format, which older archsearch versions wrote for checkpoints)
are recognised by their first bytes and refused with one line; they are never loaded
implicitly. :func:`read_legacy` converts an old checkpoint on explicit request with
``torch.load(weights_only=True)``, whose restricted unpickler admits tensors and plain
containers only.

Loading an extracted network needs only torch, safetensors and archsearch::

    model = archsearch.load_weights("subnet.safetensors")   # build(spec) + its weights

or, without archsearch's helper::

    from safetensors import safe_open
    from safetensors.torch import load_file
    with safe_open("subnet.safetensors", "pt") as f:
        meta = json.loads(f.metadata()["archsearch"])
    model = archsearch.build(archsearch.Architecture.from_json(json.dumps(meta["spec"])))
    model.load_state_dict(load_file("subnet.safetensors"))
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archsearch.errors import UserError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from archsearch.spec import Architecture

META_KEY = "archsearch"
WEIGHTS_KIND = "archsearch-weights"
WEIGHTS_FORMAT = 1
SUFFIX = ".safetensors"

_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip container, a raw pickle stream


class WeightsError(UserError):
    """A tensor file that is missing, not safetensors, of another kind or corrupt."""


def is_pickle(path: str | Path) -> bool:
    """True when the file starts like ``torch.save`` output (a zip or a pickle stream).

    A safetensors file starts with its header's length (8 bytes, little-endian) and the
    header's ``{``; a length whose low byte is 0x80 (one file in 256) would otherwise look
    like a pickle's protocol byte.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(9)
            size = f.seek(0, 2)
    except OSError:
        return False
    if len(head) == 9 and head[8:9] == b"{" and 9 + int.from_bytes(head[:8], "little") <= size:
        return False
    return head.startswith(_PICKLE_MAGIC)


def save(
    path: str | Path,
    tensors: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
) -> None:
    """Writes ``tensors`` and the JSON-able ``meta`` atomically: a crash mid-write leaves the
    previous file (if any) intact."""
    from safetensors.torch import save_file

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    # Contiguous CPU copies: safetensors refuses views and tensors that share storage, and
    # the file must load on a machine without the accelerator it was trained on.
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    header = {META_KEY: json.dumps(meta, sort_keys=True, allow_nan=False)}
    try:
        save_file(flat, str(tmp), metadata=header)
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise WeightsError(f"cannot write {str(p)!r}: {e.strerror or e}") from None


def load(
    path: str | Path, *, kind: str, what: str = "weights file", fix: str = ""
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Reads a file written by :func:`save` whose metadata has ``"kind": kind``.

    Args:
        path: The file.
        kind: The ``kind`` its metadata must declare.
        what: How messages name the file (``supernet checkpoint``).
        fix: What a message about an old pickle file tells the user to do.

    Raises:
        WeightsError: missing, a pickle file (never unpickled), not safetensors, corrupt, or
            of another kind; one line each.
    """
    from safetensors import safe_open

    p = Path(path)
    name = str(p)
    try:
        if not p.is_file():
            raise WeightsError(f"{what} {name!r} does not exist")
    except OSError as e:  # a name too long for the file system, say
        raise WeightsError(f"{what} {name[:200]!r}: {e.strerror or e}") from None
    if is_pickle(p):
        raise WeightsError(
            f"{what} {name!r} is a pickle file (torch.save), which archsearch never loads "
            f"because unpickling can run code{'; ' + fix if fix else ''}"
        )
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(name, framework="pt") as f:
            header = f.metadata() or {}
            for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                tensors[key] = f.get_tensor(key)
    except Exception as e:  # safetensors' own error type, OSError, MemoryError alike
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(
            f"{what} {name!r} is not a readable safetensors file ({first[:200]})"
        ) from None
    try:
        meta = json.loads(header[META_KEY])
    except (KeyError, ValueError, RecursionError):
        raise WeightsError(f"{what} {name!r} has no archsearch metadata") from None
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        found = meta.get("kind") if isinstance(meta, dict) else None
        raise WeightsError(f"{what} {name!r} holds {found or 'something else'!r}, not {kind!r}")
    return tensors, meta


def read_legacy(path: str | Path) -> Any:
    """An old ``torch.save`` file, read with ``weights_only=True`` (tensors, numbers,
    strings and plain containers only; anything else is refused before it is built).

    Raises:
        WeightsError: the file is not such a pickle, or needs classes the restricted
            unpickler does not admit.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{str(p)!r} does not exist")
    if not is_pickle(p):
        raise WeightsError(f"{str(p)!r} is not a torch.save file; nothing to convert")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protocol notes of the restricted unpickler
            return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(
            f"{str(p)!r} cannot be read safely (weights only): {first[:200]}; it is refused"
        ) from None


def save_module(path: str | Path, module: nn.Module, arch: Architecture, **info: Any) -> None:
    """Writes a built network's state dict with its spec, for :func:`load_weights`."""
    save(
        path,
        module.state_dict(),
        {
            "kind": WEIGHTS_KIND,
            "format": WEIGHTS_FORMAT,
            "spec": json.loads(arch.to_json()),
            "digest": arch.digest,
            **info,
        },
    )


def load_weights(path: str | Path) -> nn.Module:
    """The network of a weights file written by ``archsearch supernet extract``:
    ``archsearch.build`` of the spec it holds, with its weights loaded (strictly).

    Raises:
        WeightsError: not such a file, or its tensors do not fit the spec.
    """
    return load_network(path)[1]


def load_network(path: str | Path) -> tuple[Architecture, nn.Module]:
    """:func:`load_weights` with the spec the file holds: ``(arch, module)``."""
    from archsearch.build import build
    from archsearch.spec import Architecture

    tensors, meta = load(path, kind=WEIGHTS_KIND)
    if meta.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(
            f"weights file {str(path)!r} has format {meta.get('format')!r}; this archsearch "
            f"reads format {WEIGHTS_FORMAT}"
        )
    arch = Architecture.from_dict(meta.get("spec"))
    model = build(arch)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise WeightsError(
            f"weights file {str(path)!r} does not fit its spec: {str(e).splitlines()[0][:200]}"
        ) from None
    return arch, model.eval()
