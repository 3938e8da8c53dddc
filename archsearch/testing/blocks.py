"""Block families: the analytic cost equals the built torch module's, and the family is
documented and consistent.

For random parameters and input shapes (hypothesis), a family's analytic params, MACs and
activations must equal the built module's ``numel`` sum, ``FlopCounterMode`` total / 2 (math
attention kernel) and counted op outputs, and its output-shape rule the module's output. A
plugin's test::

    from archsearch.testing.blocks import check_family
    def test_my_block(): check_family("my_block")
"""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from archsearch.blocks import BlockFamily, Param, get_block
from archsearch.cost.reference import measure
from archsearch.spec import Block, Params

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


# Shape rules reject many random examples (a window larger than the map): filtering is the point.
_SETTINGS = settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


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
def block_example(
    draw: st.DrawFn, family: BlockFamily
) -> tuple[tuple[int, int, int], int, dict[str, Any]]:
    c_in = draw(st.integers(1, 24))
    if family.width_keeping:
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
    if family.name == "cross_cls":  # attention at the context's width, split by its heads
        params["context"] = params["heads"] * draw(st.integers(1, 4))
    sequence = (
        family.name == "cross_cls"
        or (family.name == "cvt" and params["cls"])
        or (family.name == "head" and params["pool"] == "cls")
    )
    if sequence:  # a token sequence: class token + side^2 tokens, laid out (C, T, 1)
        side = draw(st.integers(1, 6))
        shape = (shape[0], side * side + 1, 1)
    return shape, out, params


def build_meta(family: BlockFamily, shape: Any, out: int, params: Any) -> torch.nn.Module:
    with torch.device("meta"):
        return family.build(shape, out, params)


def check_costs(name: str) -> None:
    """Analytic params, MACs and activations equal the built module's; the output-shape rule
    equals the module's output shape."""
    family = get_block(name)

    @_SETTINGS
    @given(block_example(family))
    def check(example: tuple[tuple[int, int, int], int, dict[str, Any]]) -> None:
        shape, out, raw = example
        block = Block(name, out, Params(raw))  # resolves defaults exactly as a spec does
        p = block.params
        assume(family.check(shape, out, p) is None)
        module = build_meta(family, shape, out, p)
        context = family.context(shape, out, p)  # a second stream's input, if it reads one
        measured = measure(module, shape, context)
        analytic = family.cost(shape, out, p)
        assert analytic == measured, (shape, out, dict(p))
        inputs = [(1, *s) for s in (shape, context) if s is not None]
        with torch.no_grad(), torch.device("meta"):
            y = module.eval()(*(torch.empty(s) for s in inputs))
        expected: tuple[int, ...] = family.out_shape(shape, out, p)
        if "head" in family.roles:  # a head returns logits: (batch, classes)
            expected = (expected[0],)
        assert tuple(y.shape[1:]) == expected

    check()


def check_documented(name: str) -> None:
    """The family cites its paper, has roles, documents every parameter; aliases target
    parameters it has."""
    family = get_block(name)
    assert family.reference, f"{name} must cite its paper"
    assert family.roles
    for p in family.params:
        assert p.doc, f"{name}.{p.name} needs a doc line"
    for a in family.aliases:
        assert family.param(a.target)


def check_fan_ins(name: str) -> None:
    """Every fan-in the entropy reads is positive."""
    family = get_block(name)

    @_SETTINGS
    @given(block_example(family))
    def check(example: tuple[tuple[int, int, int], int, dict[str, Any]]) -> None:
        shape, out, raw = example
        p = Block(name, out, Params(raw)).params
        assume(family.check(shape, out, p) is None)
        assert all(f >= 1 for f in family.fan_ins(shape, out, p))

    check()


def check_width_keeping(name: str) -> None:
    """A family declared ``width_keeping`` refuses another output width than its input's (and
    takes its input's); one not declared so takes another width somewhere."""
    family = get_block(name)

    @_SETTINGS
    @given(block_example(family))
    def check(example: tuple[tuple[int, int, int], int, dict[str, Any]]) -> None:
        shape, out, raw = example
        p = Block(name, out, Params(raw)).params
        assume(family.check(shape, out, p) is None)
        if family.width_keeping:
            assert out == shape[0]
            assert family.check(shape, out + 1, p) is not None

    check()


def check_family(name: str) -> None:
    """Every check of this module on block family ``name``."""
    check_documented(name)
    check_costs(name)
    check_fan_ins(name)
    check_width_keeping(name)
