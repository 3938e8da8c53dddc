"""``import archsearch`` is light (its names are imported on first use) and every public name
is the documented object, whatever was imported before it."""

from __future__ import annotations

import subprocess
import sys
import types


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
