"""``import archsearch`` is light (its names are imported on first use) and every public name
is the documented object, whatever was imported before it."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path


def test_public_names_resolve_after_every_submodule_import() -> None:
    import archsearch.build
    import archsearch.cost
    import archsearch.spaces
    import archsearch.spec
    import archsearch.weights

    for name in archsearch.__all__:
        value = getattr(archsearch, name)
        if name == "zoo":
            assert isinstance(value, types.ModuleType)
        else:
            assert not isinstance(value, types.ModuleType), name
    assert set(archsearch.__all__) <= set(dir(archsearch))


def test_import_archsearch_is_light() -> None:
    code = (
        "import sys, archsearch\n"
        "print(sorted(m for m in ('numpy', 'pydantic', 'sqlalchemy', 'torch', "
        "'archsearch.zoo', 'archsearch.spaces') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.strip() == "[]"


def test_a_safetensors_header_of_length_128_mod_256_is_not_taken_for_a_pickle(
    tmp_path: Path,
) -> None:
    """Its first byte is 0x80, a pickle's protocol byte: one checkpoint in 256 was refused."""
    import torch

    from archsearch import weights

    for pad in range(300):
        path = tmp_path / f"w{pad}.safetensors"
        weights.save(path, {"x": torch.zeros(2)}, {"kind": "test", "pad": "a" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    else:
        raise AssertionError("no padding gave a header length of 128 mod 256")
    tensors, meta = weights.load(path, kind="test")
    assert meta["pad"] == "a" * pad and torch.equal(tensors["x"], torch.zeros(2))
    pickled = tmp_path / "old.pt"
    torch.save({"x": torch.zeros(2)}, pickled)
    assert weights.is_pickle(pickled) and not weights.is_pickle(path)
