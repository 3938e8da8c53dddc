"""archsearch: neural architecture search over hybrid convolution/attention vision backbones.

The public API::

    import archsearch
    space = archsearch.load_space("hybrid")     # a built-in name or a YAML file
    arch = space.sample(seed=0)                  # an archsearch.Architecture
    cost = archsearch.count(arch)                # exact params/MACs/activations, no torch
    model = archsearch.build(arch)               # a torch.nn.Module
    model = archsearch.load_weights(path)        # a network saved with its weights

FLOP convention: one multiply-accumulate counts as one FLOP, as the seed papers report
(ConvNeXt-T = 4.5 GFLOPs).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from archsearch._version import __version__

# `build` is also the name of its module: imported here, so that the module's import (by
# whoever comes first) cannot leave the package attribute pointing at the module.
from archsearch.build import build

# The public names, each imported on first use (PEP 562): `import archsearch.cli` for
# `archsearch --help` does not pay for the spaces' schema, the zoo or pydantic.
_PUBLIC = {
    "Architecture": "archsearch.spec",
    "ArchsearchError": "archsearch.errors",
    "Block": "archsearch.spec",
    "Budget": "archsearch.cost",
    "Cost": "archsearch.blocks",
    "Space": "archsearch.spaces",
    "Stage": "archsearch.spec",
    "UserError": "archsearch.errors",
    "count": "archsearch.cost",
    "count_layers": "archsearch.cost",
    "get_block": "archsearch.blocks",
    "list_blocks": "archsearch.blocks",
    "list_spaces": "archsearch.spaces",
    "load_space": "archsearch.spaces",
    "load_weights": "archsearch.weights",
    "parse_budget": "archsearch.cost",
}

if TYPE_CHECKING:
    from archsearch import zoo
    from archsearch.blocks import Cost, get_block, list_blocks
    from archsearch.cost import Budget, count, count_layers, parse_budget
    from archsearch.errors import ArchsearchError, UserError
    from archsearch.spaces import Space, list_spaces, load_space
    from archsearch.spec import Architecture, Block, Stage
    from archsearch.weights import load_weights


def __getattr__(name: str) -> Any:
    if name == "zoo":
        return importlib.import_module("archsearch.zoo")
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'archsearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "Architecture",
    "ArchsearchError",
    "Block",
    "Budget",
    "Cost",
    "Space",
    "Stage",
    "UserError",
    "__version__",
    "build",
    "count",
    "count_layers",
    "get_block",
    "list_blocks",
    "list_spaces",
    "load_space",
    "load_weights",
    "parse_budget",
    "zoo",
]
