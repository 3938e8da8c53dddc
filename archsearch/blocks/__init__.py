"""The block vocabulary: one :class:`BlockFamily` per block type, in the :data:`BLOCKS` registry.

Look a family up with :func:`get_block` (unknown names raise an error listing the known ones)
and list them with :func:`list_blocks`. Plugins register more through the entry-point group
``archsearch.blocks`` (each entry point names a BlockFamily subclass or instance).
"""

from __future__ import annotations

from archsearch.blocks.base import (
    ROLES,
    Alias,
    BlockFamily,
    Cost,
    LayerCall,
    Param,
    Role,
    Scalar,
    Shape,
)
from archsearch.registry import Registry

BLOCKS: Registry[BlockFamily] = Registry(
    "block type",
    entry_point_group="archsearch.blocks",
    adapt=lambda obj: obj() if isinstance(obj, type) else obj,
)

# Every family defined in this package's modules, under its name (a new family: a new module).
# (layers/ holds the torch modules, imported by the families' build methods only.)
BLOCKS.discover(__name__, BlockFamily, adapt=lambda cls: cls(), skip=("layers",))


def get_block(name: str) -> BlockFamily:
    """The family registered as ``name``; unknown names raise an error listing the known ones."""
    return BLOCKS.get(name)


def list_blocks(role: Role | None = None) -> list[str]:
    """Names of the registered block types, optionally only those usable in ``role``."""
    return [n for n in BLOCKS.names() if role is None or role in get_block(n).roles]


__all__ = [
    "BLOCKS",
    "ROLES",
    "Alias",
    "BlockFamily",
    "Cost",
    "LayerCall",
    "Param",
    "Role",
    "Scalar",
    "Shape",
    "get_block",
    "list_blocks",
]
