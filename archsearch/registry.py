"""Typed registries of named implementations (blocks, spaces, strategies, evaluators).

Follows fvcore's ``Registry`` with timm's ``list_*``/``create_*`` ergonomics: one registry per
kind, a decorator to register, lookups that fail with the list of registered names, and object
creation that rejects unknown keyword arguments instead of dropping them.

Third-party packages add implementations through ``importlib.metadata`` entry points in the
group ``archsearch.<kind>`` (for example ``archsearch.strategies``); each entry point names an
object that is registered under the entry point's name the first time the registry is read.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import math
import pkgutil
import types
import typing
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

from archsearch.errors import UnknownNameError, UserError
from archsearch.limits import MAX_INT

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
        self._sources: list[Callable[[], dict[str, T]]] = []
        self._pending: dict[str, metadata.EntryPoint] = {}

    def add_source(self, source: Callable[[], dict[str, T]]) -> None:
        """Adds names derived from another registry (``latency@<device>`` from the devices):
        ``source()`` is consulted on every lookup, so later registrations there show here."""
        self._sources.append(source)

    def _derived(self) -> dict[str, T]:
        out: dict[str, T] = {}
        for source in self._sources:
            out.update(source())
        return out

    def register(self, name: str, obj: T) -> T:
        """Registers ``obj`` under ``name``; a name can be registered once."""
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        return obj

    def register_lazy(self, name: str, target: str) -> None:
        """Registers ``"module:attribute"`` under ``name``, imported on first use (an
        extension whose import is heavy, such as a strategy built on numpy and cvxpy, stays
        out of ``archsearch --help``)."""
        self._pending.setdefault(name, metadata.EntryPoint(name, target, "archsearch"))

    def discover(
        self,
        package: str,
        base: type,
        *,
        adapt: Callable[[type], T] | None = None,
        skip: tuple[str, ...] = (),
    ) -> None:
        """Registers every class of ``package``'s modules (and subpackages, but for those in
        ``skip``) that subclasses ``base`` and names itself (a ``name`` attribute of its own;
        abstract classes and bases without one are skipped), each under its name: a new
        built-in extension is one new module, with no list to edit. ``adapt`` turns the class
        into the registered object (an instance)."""
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__, prefix=f"{package}."):
            if info.name.rpartition(".")[2] in skip:
                continue
            module = importlib.import_module(info.name)
            for obj in vars(module).values():
                if (
                    isinstance(obj, type)
                    and issubclass(obj, base)
                    and obj.__module__.startswith(module.__name__)
                    and isinstance(obj.__dict__.get("name"), str)
                    and not inspect.isabstract(obj)
                    and self._items.get(obj.__dict__["name"]) is not obj
                ):
                    value = adapt(obj) if adapt else obj
                    self.register(obj.__dict__["name"], value)  # type: ignore[arg-type]

    def decorator(self, name: str) -> Callable[[T], T]:
        """Returns a decorator that registers the decorated object under ``name``."""

        def wrap(obj: T) -> T:
            return self.register(name, obj)

        return wrap

    def _load_plugins(self) -> None:
        """Finds the entry points (their names only: each is imported when first asked for,
        so that listing names, or ``archsearch --help``, imports no plugin)."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        assert self._entry_point_group is not None
        for ep in metadata.entry_points(group=self._entry_point_group):
            if ep.name not in self._items:
                self._pending.setdefault(ep.name, ep)

    def _load(self, name: str) -> None:
        ep = self._pending.pop(name, None)
        if ep is not None:
            obj = ep.load()
            self._items[name] = self._adapt(obj) if self._adapt else obj

    def get(self, name: str) -> T:
        """Returns the implementation called ``name``.

        Raises:
            UnknownNameError: ``name`` is not registered; the message lists the valid names.
        """
        if name not in self._items:
            self._load_plugins()
            self._load(name)
        if name in self._items:
            return self._items[name]
        derived = self._derived()
        if name in derived:
            return derived[name]
        raise UnknownNameError(self.kind, name, {*self._items, *self._pending, *derived})

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._load_plugins()
        return sorted({*self._items, *self._pending, *self._derived()})

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items or name in self._pending or name in self._derived()

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
    try:
        target = factory.__init__ if inspect.isclass(factory) else factory
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: only the names are checked
        return
    for key, value in kwargs.items():
        hint = hints.get(key)
        if hint is None or _matches(value, hint):
            continue
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise UserError(
            f"{what}: option {key}={shown} must be {_describe(hint)}; e.g. {key}=... with a "
            "value of that type"
        )


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` (plain data from YAML or JSON) fits the annotation ``hint``; numbers
    must be finite and fit the databases' 32-bit integers. Unknown annotations match."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INT
    if hint is float:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and abs(value) <= 1e300
        )
    if hint is str:
        return isinstance(value, str)
    if origin is typing.Literal:
        return value in args
    if origin in (list, tuple, collections.abc.Sequence, collections.abc.Iterable):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(
                _matches(v, a) for v, a in zip(value, args, strict=True)
            )
        return not args or all(_matches(v, args[0]) for v in value)
    if origin in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    return True


def _describe(hint: Any) -> str:
    """``int | None`` -> ``an integer (or null)``, for messages."""
    names = {
        bool: "true or false",
        int: f"an integer (at most {MAX_INT:,} in size)",
        float: "a finite number",
        str: "a string",
        type(None): "null",
    }
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    if typing.get_origin(hint) in (list, tuple, collections.abc.Sequence):
        return "a list"
    return names.get(hint, getattr(hint, "__name__", str(hint)))
