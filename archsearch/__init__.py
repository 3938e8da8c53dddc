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

from archsearch import zoo
from archsearch._version import __version__
from archsearch.blocks import Cost, get_block, list_blocks
from archsearch.build import build
from archsearch.cost import Budget, count, count_layers, parse_budget
from archsearch.errors import ArchsearchError, UserError
from archsearch.spaces import Space, list_spaces, load_space
from archsearch.spec import Architecture, Block, Stage
from archsearch.weights import load_weights

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
