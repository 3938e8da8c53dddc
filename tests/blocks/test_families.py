"""Conformance of every registered block family (:mod:`archsearch.testing.blocks`: analytic
cost == the built torch module, documented and consistent), and the block registry's errors."""

from __future__ import annotations

import pytest

from archsearch.blocks import BLOCKS, list_blocks
from archsearch.errors import SpecError, UnknownNameError
from archsearch.spec import Block
from archsearch.testing import blocks as conformance


@pytest.mark.parametrize("name", list_blocks())
def test_family_cost_equals_built_module(name: str) -> None:
    conformance.check_costs(name)


@pytest.mark.parametrize("name", list_blocks())
def test_family_is_documented_and_consistent(name: str) -> None:
    conformance.check_documented(name)


@pytest.mark.parametrize("name", list_blocks())
def test_fan_ins_are_positive(name: str) -> None:
    conformance.check_fan_ins(name)


@pytest.mark.parametrize("name", list_blocks())
def test_width_keeping_is_declared_on_the_family(name: str) -> None:
    conformance.check_width_keeping(name)


def test_unknown_block_type_lists_known_ones() -> None:
    with pytest.raises(SpecError) as e:
        Block("transformerz", 32)
    for known in ("convnext", "mbconv", "mhsa"):
        assert known in str(e.value)


def test_unknown_and_missing_parameters_are_rejected() -> None:
    with pytest.raises(SpecError, match="unknown parameter.*kernal.*its parameters are"):
        Block("convnext", 32, {"kernal": 3})
    with pytest.raises(SpecError, match="needs parameter 'heads'"):
        Block("mhsa", 32)
    with pytest.raises(SpecError, match="must be int"):
        Block("convnext", 32, {"kernel": "3"})
    with pytest.raises(SpecError, match="not allowed; choose one of"):
        Block("mbconv", 32, {"hidden": 64, "stride": 3})


def test_registry_lookup_errors_list_names() -> None:
    with pytest.raises(UnknownNameError) as e:
        BLOCKS.get("nope")
    assert "convnext" in str(e.value) and "nope" in str(e.value)


def test_defaults_depend_on_width() -> None:
    assert Block("convnext", 96).params["hidden"] == 384
    assert Block("mhsa", 64, {"heads": 2}).params["hidden"] == 256
