"""Registries: lookups that list names, strict keyword arguments, entry-point plugins."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata

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
