"""Conformance of every registered block family: analytic cost == the built torch module.

For random parameters and input shapes (hypothesis), each family's analytic params, MACs and
activations equal the built module's ``numel`` sum, ``FlopCounterMode`` total / 2 (math
attention kernel) and counted op outputs, and its output-shape rule equals the module's.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from archsearch.blocks import BLOCKS, BlockFamily, Param, get_block, list_blocks
from archsearch.cost.reference import measure
from archsearch.errors import SpecError, UnknownNameError
from archsearch.spec import Block

WIDTH_KEEPING = {
    "convnext",
    "pool",
    "mhsa",
    "sr_mhsa",
    "effformer_attn",
    "tinyvit",
    "cvt",
    "norm",
    "nb201_cell",
    "vit_block",
}

# Ranges that keep examples small (fast on the meta device) yet cover every branch.
RANGES: dict[str, st.SearchStrategy[Any]] = {
    "kernel": st.sampled_from([1, 3, 5, 7]),
    "pool_size": st.sampled_from([1, 3, 5]),
    "local_conv": st.sampled_from([1, 3, 5]),
    "patch": st.integers(1, 4),
    "hidden": st.integers(0, 48),
    "se": st.integers(0, 12),
    "sr": st.integers(1, 4),
    "window": st.integers(1, 8),
    "padding": st.integers(0, 3),
}


def param_strategy(p: Param) -> st.SearchStrategy[Any]:
    if p.choices is not None:
        return st.sampled_from(p.choices)
    if p.name in RANGES:
        lo = int(p.min) if p.min is not None else 0
        return RANGES[p.name].filter(lambda v: v >= lo)
    if p.kind is bool:
        return st.booleans()
    if p.kind is int:
        return st.integers(int(p.min or 1), 8)
    if p.kind is float:
        return st.floats(p.min or 0.0, 8.0)
    raise AssertionError(f"no strategy for parameter {p.name}")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def block_example(draw: st.DrawFn, family: BlockFamily) -> tuple[tuple[int, int, int], int, dict]:
    c_in = draw(st.integers(1, 24))
    if family.name in WIDTH_KEEPING:
        out = c_in
    elif "head" in family.roles:
        out = draw(st.integers(1, 20))
    else:
        out = draw(st.integers(1, 24))
    size = draw(st.integers(4 if family.name == "conv_stem" else 1, 14))
    shape = (c_in, size, draw(st.integers(max(1, size - 3), size + 3)))
    params: dict[str, Any] = {}
    for p in family.params:
        if p.name == "heads":
            params["heads"] = draw(st.sampled_from(divisors(out)))
        else:
            params[p.name] = draw(param_strategy(p))
    if "hidden" in params and params["hidden"] == 0 and family.param("hidden").min:
        params["hidden"] = 1
    if family.name == "conv_stem" and out % 2:
        out += 1
    if family.name == "ncb":
        params["head_dim"] = draw(st.sampled_from(divisors(out)))
    if family.name == "ntb":  # the attention and conv branches split the width by head_dim
        hd = draw(st.integers(1, 4))
        d, m = hd * draw(st.integers(1, 4)), hd * draw(st.integers(1, 4))
        out, params["head_dim"], params["mhsa_out"] = d + m, hd, d
    sequence = (family.name == "cvt" and params["cls"]) or (
        family.name == "head" and params["pool"] == "cls"
    )
    if sequence:  # a token sequence: class token + side^2 tokens, laid out (C, T, 1)
        side = draw(st.integers(1, 6))
        shape = (shape[0], side * side + 1, 1)
    return shape, out, params


def build_meta(family: BlockFamily, shape, out, params):  # type: ignore[no-untyped-def]
    with torch.device("meta"):
        return family.build(shape, out, params)


@pytest.mark.parametrize("name", list_blocks())
def test_family_cost_equals_built_module(name: str) -> None:
    family = get_block(name)

    @given(block_example(family))
    def check(example: tuple[tuple[int, int, int], int, dict]) -> None:
        shape, out, raw = example
        block = Block(name, out, raw)  # resolves defaults exactly as a spec does
        p = block.params
        assume(family.check(shape, out, p) is None)
        module = build_meta(family, shape, out, p)
        measured = measure(module, shape)
        analytic = family.cost(shape, out, p)
        assert analytic == measured, (shape, out, dict(p))
        with torch.no_grad(), torch.device("meta"):
            y = module.eval()(torch.empty((1, *shape)))
        expected = family.out_shape(shape, out, p)
        if "head" in family.roles:  # a head returns logits: (batch, classes)
            expected = (expected[0],)
        assert tuple(y.shape[1:]) == expected

    check()


@pytest.mark.parametrize("name", list_blocks())
def test_family_is_documented_and_consistent(name: str) -> None:
    family = get_block(name)
    assert family.reference, f"{name} must cite its paper"
    assert family.roles
    for p in family.params:
        assert p.doc, f"{name}.{p.name} needs a doc line"
    for a in family.aliases:
        assert family.param(a.target)


@pytest.mark.parametrize("name", list_blocks())
def test_fan_ins_are_positive(name: str) -> None:
    family = get_block(name)

    @given(block_example(family))
    def check(example: tuple[tuple[int, int, int], int, dict]) -> None:
        shape, out, raw = example
        p = Block(name, out, raw).params
        assume(family.check(shape, out, p) is None)
        assert all(f >= 1 for f in family.fan_ins(shape, out, p))

    check()


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
