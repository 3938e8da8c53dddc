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
import functools
import importlib
import importlib.util
import inspect
import math
import re
import threading
import types
import typing
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, TypeVar

from archsearch.errors import UnknownNameError, UserError
from archsearch.limits import MAX_INT

_LOADING = threading.RLock()
"""Held while a registry imports a pending entry: one lock for every registry (an entry's
import may load entries of other registries), reentrant (or of its own)."""

T = TypeVar("T")

# A top-level class and the string its body (four spaces in) assigns to `name`, possibly
# annotated: `class Evolution(Strategy):` ... `    name = "evolution"`. Only indented or blank
# lines lie between, so a match stays inside one class body. tests/test_registry.py checks
# that this finds exactly the classes importing every module finds.
_NAMED_CLASS = re.compile(
    r"^class (?P<cls>\w+)\b[^\n]*:\n(?:(?:[ \t][^\n]*)?\n)*?"
    r"    name(?: *:[^=\n]+)? *= *[\"'](?P<name>[^\"'\n]+)[\"']",
    re.M,
)


def _load_class(
    module: str, cls: str, name: str, base: type, adapt: Callable[[type], Any] | None
) -> Any:
    obj = getattr(importlib.import_module(module), cls)
    if not (
        isinstance(obj, type)
        and issubclass(obj, base)
        and obj.__dict__.get("name") == name
        and not inspect.isabstract(obj)
    ):
        raise TypeError(
            f"{module}.{cls} is registered as {name!r} but is not a concrete "
            f"{base.__name__} subclass whose own `name` is {name!r}"
        )
    return adapt(obj) if adapt else obj


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
        # name -> loader of what is registered but not imported yet (entry points, discovered
        # classes), and name -> "module:attribute" of each, to refuse a second registration
        self._pending: dict[str, Callable[[], T]] = {}
        self._targets: dict[str, str] = {}

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
        if (name in self._items and self._items[name] is not obj) or name in self._pending:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        return obj

    def register_lazy(self, name: str, target: str) -> None:
        """Registers ``"module:attribute"`` under ``name``, imported on first use (an
        extension whose import is heavy, such as a strategy built on numpy and cvxpy, stays
        out of ``archsearch --help``)."""
        module, _, attribute = target.partition(":")

        def load() -> Any:
            return getattr(importlib.import_module(module), attribute)

        self._add_pending(name, target, self._adapted(load))

    def _add_pending(self, name: str, target: str, load: Callable[[], T]) -> None:
        known = self._targets.get(name)
        if known == target:  # the same class found again
            return
        if known is not None or name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._targets[name] = target
        self._pending[name] = load

    def discover(
        self,
        package: str,
        base: type,
        *,
        adapt: Callable[[type], T] | None = None,
        skip: tuple[str, ...] = (),
    ) -> None:
        """Registers every class of ``package``'s modules (and subpackages, but for those in
        ``skip``) that names itself (a top-level class whose body sets ``name`` to a string),
        each under its name: a new built-in extension is one new module, with no list to edit.

        The modules are read, not imported: a class is imported when its name is first looked
        up (so that ``archsearch --help`` lists the strategies without importing numpy and
        cvxpy), and checked then to be a concrete subclass of ``base`` that names itself.
        ``adapt`` turns the class into the registered object (an instance).
        """
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[0] in skip or "__pycache__" in parts:
                continue
            module = ".".join((package, *parts)).removesuffix(".__init__")
            for match in _NAMED_CLASS.finditer(path.read_text(encoding="utf-8")):
                cls, name = match["cls"], match["name"]
                load = functools.partial(_load_class, module, cls, name, base, adapt)
                self._add_pending(name, f"{module}:{cls}", load)

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
        with _LOADING:
            if self._plugins_loaded:
                return
            assert self._entry_point_group is not None
            for ep in metadata.entry_points(group=self._entry_point_group):
                if ep.name not in self._items and ep.name not in self._pending:
                    self._targets[ep.name] = ep.value
                    self._pending[ep.name] = self._adapted(ep.load)
            self._plugins_loaded = True

    def _adapted(self, load: Callable[[], Any]) -> Callable[[], T]:
        adapt = self._adapt
        return (lambda: adapt(load())) if adapt else load

    def _load(self, name: str) -> None:
        with _LOADING:  # threads of a server may ask for the same entry at once
            load = self._pending.get(name)
            if load is not None:
                self._items[name] = load()
                del self._pending[name]

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
