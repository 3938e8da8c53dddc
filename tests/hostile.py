"""Hostile files for the security tests: each would create a marker file if it were ever
deserialised with code execution (a pickle's ``__reduce__``, a YAML python tag)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path


class _Payload:
    """Unpickling this calls ``os.system("touch <marker>")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def hostile_pickle(folder: Path, name: str = "evil.pt") -> tuple[Path, Path]:
    """A pickle (as ``torch.save`` would write one) that runs code when unpickled; returns
    the file and the marker it would create."""
    import torch

    marker = folder / f"{name}.pwned"
    path = folder / name
    torch.save({"kind": "archsearch-supernet", "format": 1, "x": _Payload(marker)}, path)
    return path, marker


def hostile_raw_pickle(folder: Path, name: str = "evil.pkl") -> tuple[Path, Path]:
    """The same payload as a bare pickle stream (no zip container)."""
    marker = folder / f"{name}.pwned"
    path = folder / name
    path.write_bytes(pickle.dumps(_Payload(marker)))
    return path, marker


def hostile_yaml(marker: Path) -> str:
    """YAML that runs ``touch marker`` under an unsafe loader (yaml.load / unsafe_load)."""
    return f'!!python/object/apply:os.system ["touch {marker}"]\n'
