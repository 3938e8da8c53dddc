"""Declarative search spaces: the YAML schema, constraints, and the :class:`Space` API.

``load_space("hybrid")`` loads a built-in space (``archsearch/spaces/builtin/*.yaml``);
``load_space("path/to/space.yaml")`` loads a user's file the same way. Plugins add named
spaces through the entry-point group ``archsearch.spaces`` (each entry point names a path to a
YAML file or a callable returning a :class:`Space`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archsearch.errors import SpaceError, UnknownNameError
from archsearch.files import exists, short
from archsearch.registry import Registry
from archsearch.spaces.constraints import CONSTRAINTS, Constraint, Draft
from archsearch.spaces.space import (
    Choice,
    LayerOptions,
    Membership,
    Space,
    SpaceSize,
    StageOptions,
    make_block,
    resolve_choices,
    with_fixed,
)

BUILTIN_DIR = Path(__file__).parent / "builtin"


def _loader(obj: Any) -> Callable[[], Space]:
    """A space factory from an entry point's object: a callable, or a YAML file's path."""
    if callable(obj):
        return obj  # type: ignore[no-any-return]
    return functools.partial(Space.load, obj)


SPACES: Registry[Callable[[], Space]] = Registry(
    "space", entry_point_group="archsearch.spaces", adapt=_loader
)
for _path in sorted(BUILTIN_DIR.glob("*.yaml")):
    SPACES.register(_path.stem, functools.partial(Space.load, _path))


def list_spaces() -> list[str]:
    """Names of the built-in and plugin spaces."""
    return SPACES.names()


def load_space(name_or_path: str | Path) -> Space:
    """A space by registered name (``"hybrid"``) or by the path of a YAML file.

    Raises:
        UnknownNameError: neither a registered name nor an existing file; lists the names.
        SpaceError: the file does not follow the schema (``file:line: message``).
    """
    text = str(name_or_path)
    if text in SPACES:
        return SPACES.get(text)()
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or exists(path):
        if not exists(path):
            raise SpaceError(
                f"--space: file {short(text)!r} does not exist; give a built-in space "
                f"({', '.join(list_spaces())}) or the path of a YAML file"
            )
        return Space.load(path)
    raise UnknownNameError("space", short(text), list_spaces())


__all__ = [
    "CONSTRAINTS",
    "SPACES",
    "Choice",
    "Constraint",
    "Draft",
    "LayerOptions",
    "Membership",
    "Space",
    "SpaceSize",
    "StageOptions",
    "list_spaces",
    "load_space",
    "make_block",
    "resolve_choices",
    "with_fixed",
]
