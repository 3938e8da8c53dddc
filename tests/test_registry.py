"""Registries: lookups that list names, strict keyword arguments, entry-point plugins."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import pytest

from archsearch.errors import UnknownNameError, UserError
from archsearch.registry import Registry
from archsearch.solvers import RandomSearch
from archsearch.solvers.base import Result


class ToyStrategy(RandomSearch):
    """A plugin strategy, found through the archsearch.strategies entry-point group."""

    name = "toy"

    def tell(self, results: Sequence[Result]) -> None:
        pass


def make(*, size: int = 1) -> int:
    return size


def test_lookup_and_errors() -> None:
    reg: Registry[object] = Registry("widget")
    reg.register("a", make)
    assert reg.get("a") is make and "a" in reg and reg.names() == ["a"]
    with pytest.raises(UnknownNameError, match="unknown widget 'b'; choose one of: a"):
        reg.get("b")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", len)


def test_create_rejects_unknown_keywords() -> None:
    reg: Registry[object] = Registry("widget")
    reg.register("a", make)
    assert reg.create("a", size=3) == 3
    with pytest.raises(
        UserError, match="widget 'a' does not accept option 'sise'; accepted: size"
    ):
        reg.create("a", sise=3)


def test_entry_point_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = metadata.EntryPoint(
        name="toy", value="tests.test_registry:ToyStrategy", group="archsearch.strategies"
    )

    def entry_points(*, group: str) -> list[metadata.EntryPoint]:
        return [ep] if group == "archsearch.strategies" else []

    monkeypatch.setattr("archsearch.registry.metadata.entry_points", entry_points)
    reg: Registry[type] = Registry("strategy", entry_point_group="archsearch.strategies")
    reg.register("random", RandomSearch)
    assert reg.names() == ["random", "toy"]
    assert reg.get("toy") is ToyStrategy


def _defined_classes(package: str, base: type, skip: tuple[str, ...] = ()) -> dict[str, type]:
    """What discovery must find, found the slow way: import every module of ``package`` and
    keep the concrete subclasses of ``base`` that name themselves, defined in that module."""
    pkg = importlib.import_module(package)
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        if info.name.split(".")[len(package.split("."))] in skip:
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, base)
                and obj.__module__ == module.__name__
                and isinstance(obj.__dict__.get("name"), str)
                and not inspect.isabstract(obj)
            ):
                found[obj.__dict__["name"]] = obj
    return found


@pytest.mark.parametrize("kind", ["blocks", "strategies", "evaluators"])
def test_discovery_reading_sources_finds_what_importing_finds(kind: str) -> None:
    """The registries read their packages' sources for named classes instead of importing
    them; the result is the same set of classes an import of every module finds."""
    from archsearch.blocks import BLOCKS, BlockFamily
    from archsearch.evaluators import EVALUATORS, Evaluator
    from archsearch.solvers import STRATEGIES, Strategy

    registry, package, base, skip = {
        "blocks": (BLOCKS, "archsearch.blocks", BlockFamily, ("layers",)),
        "strategies": (STRATEGIES, "archsearch.solvers", Strategy, ()),
        "evaluators": (EVALUATORS, "archsearch.evaluators", Evaluator, ()),
    }[kind]
    expected = _defined_classes(package, base, skip)
    assert len(expected) >= 5
    discovered = {
        name: target
        for name, target in registry._targets.items()
        if target.startswith(f"{package}.")
    }
    assert discovered == {n: f"{c.__module__}:{c.__qualname__}" for n, c in expected.items()}
    for name, cls in expected.items():
        obj = registry.get(name)
        assert (type(obj) if kind == "blocks" else obj) is cls


def test_discovery_imports_on_first_use_and_checks_the_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "toyplugins"
    (pkg / "inner").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "inner" / "__init__.py").write_text("")
    (pkg / "good.py").write_text(
        "from tests.test_registry import ToyStrategy\n"
        "class Good(ToyStrategy):\n"
        '    """Docs."""\n\n'
        '    name: str = "good"\n\n'
        "    def helper(self) -> None:\n"
        '        name = "not-a-registration"\n'
    )
    (pkg / "inner" / "bad.py").write_text('class NotAStrategy:\n    name = "bad"\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[type] = Registry("strategy")
    reg.discover("toyplugins", RandomSearch)
    assert reg.names() == ["bad", "good"]
    assert "toyplugins.good" not in sys.modules  # read, not imported
    assert reg.get("good").__name__ == "Good"
    with pytest.raises(TypeError, match=r"toyplugins.inner.bad.NotAStrategy .* not a concrete"):
        reg.get("bad")
    reg.discover("toyplugins", RandomSearch)  # found again: not a second registration
    with pytest.raises(ValueError, match="already registered"):
        reg.register("good", ToyStrategy)
    monkeypatch.delitem(sys.modules, "toyplugins.good")
    monkeypatch.delitem(sys.modules, "toyplugins")
