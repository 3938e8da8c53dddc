"""Typed registries of named implementations (blocks, spaces, strategies, evaluators).

Follows fvcore's ``Registry`` with timm's ``list_*``/``create_*`` ergonomics: one registry per
kind, a decorator to register, lookups that fail with the list of registered names, and object
creation that rejects unknown keyword arguments instead of dropping them.

Third-party packages add implementations through ``importlib.metadata`` entry points in the
group ``archsearch.<kind>`` (for example ``archsearch.strategies``); each entry point names an
object that is registered under the entry point's name the first time the registry is read.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

from archsearch.errors import UnknownNameError, UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to implementations of one kind.

    Args:
        kind: What is registered, in words ("block", "strategy"); used in error messages.
        entry_point_group: The entry-point group scanned for plugins, or None for none.
        adapt: Applied to each object an entry point loads (e.g. to instantiate a class).
    """

    def __init__(
        self,
        kind: str,
        *,
        entry_point_group: str | None = None,
        adapt: Callable[[Any], T] | None = None,
    ) -> None:
        self.kind = kind
        self._entry_point_group = entry_point_group
        self._adapt = adapt
        self._items: dict[str, T] = {}
        self._plugins_loaded = entry_point_group is None

    def register(self, name: str, obj: T) -> T:
        """Registers ``obj`` under ``name``; a name can be registered once."""
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        return obj

    def decorator(self, name: str) -> Callable[[T], T]:
        """Returns a decorator that registers the decorated object under ``name``."""

        def wrap(obj: T) -> T:
            return self.register(name, obj)

        return wrap

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        assert self._entry_point_group is not None
        for ep in metadata.entry_points(group=self._entry_point_group):
            if ep.name not in self._items:
                obj = ep.load()
                self._items[ep.name] = self._adapt(obj) if self._adapt else obj

    def get(self, name: str) -> T:
        """Returns the implementation called ``name``.

        Raises:
            UnknownNameError: ``name`` is not registered; the message lists the valid names.
        """
        if name not in self._items:
            self._load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._items) from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def create(self, name: str, /, **kwargs: Any) -> Any:
        """Calls the implementation registered as ``name`` with ``kwargs``.

        Raises:
            UnknownNameError: ``name`` is not registered.
            UserError: a keyword argument is not accepted by the implementation.
        """
        factory = self.get(name)
        if not callable(factory):
            raise TypeError(f"{self.kind} {name!r} is not callable")
        check_kwargs(f"{self.kind} {name!r}", factory, kwargs)
        return factory(**kwargs)


def check_kwargs(what: str, factory: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Raises a UserError naming any keyword argument ``factory`` does not accept."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature
        return
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = {
        n
        for n, p in params.items()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }
    for key in kwargs:
        if key not in accepted:
            raise UserError(
                f"{what} does not accept option {key!r}; accepted: {', '.join(sorted(accepted))}"
            )
