"""Exact counting of whole networks, and budget parsing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.cost import Budget, count, count_layers, format_si, parse_budget
from archsearch.cost.reference import measure_arch
from archsearch.errors import BudgetError
from archsearch.spaces import Space
from archsearch.spec import Architecture
from tests.conftest import FIXTURES


@pytest.mark.slow
@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1))
def test_sampled_hybrid_networks_count_exactly(hybrid: Space, seed: int) -> None:
    arch = hybrid.sample(seed=seed)
    assert count(arch) == measure_arch(arch)


@pytest.mark.parametrize("name", ["deepmad_r50", "deepmad_29m"])
def test_reference_networks_count_exactly(name: str) -> None:
    arch = Architecture.load(FIXTURES / f"{name}.yaml")
    assert count(arch) == measure_arch(arch)


def test_count_layers_sums_to_count(hybrid: Space) -> None:
    arch = hybrid.sample(seed=1)
    parts = count_layers(arch)
    assert parts[0][0] == "stem" and parts[-1][0] == "head"
    total = parts[0][2]
    for _, _, c in parts[1:]:
        total = total + c
    assert total == count(arch)


def test_count_needs_no_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, archsearch; a = archsearch.load_space('hybrid').sample(seed=0); "
        "archsearch.count(a); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1GFLOP", ("macs", 10**9)),
        ("1gflop", ("macs", 10**9)),
        ("500MFLOP", ("macs", 500 * 10**6)),
        ("500 MFLOPs", ("macs", 500 * 10**6)),
        ("1.3GMAC", ("macs", 1_300_000_000)),
        ("1.3gmacs", ("macs", 1_300_000_000)),
        ("1e9FLOP", ("macs", 10**9)),
        ("5M", ("params", 5_000_000)),
        ("25.55M", ("params", 25_550_000)),
        ("5Mparams", ("params", 5_000_000)),
        ("3.5mp", ("params", 3_500_000)),
        ("750k", ("params", 750_000)),
    ],
)
def test_parse_budget(text: str, expected: tuple[str, int]) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["", "GFLOP", "1XFLOP", "1 G FLOP Z", "40ms", "-1M", "0M"])
def test_bad_budgets_say_how_to_write_one(text: str) -> None:
    with pytest.raises(BudgetError, match="budget"):
        parse_budget(text)


def test_budget_parse_and_admits() -> None:
    b = Budget.parse(["1GFLOP,5M"])
    assert b == Budget(macs=10**9, params=5 * 10**6)
    assert Budget.parse(["1GFLOP", "5M"]) == b
    assert str(b) == "MACs <= 1GFLOP, params <= 5M"
    with pytest.raises(BudgetError, match="given twice"):
        Budget.parse(["1GFLOP", "2GFLOP"])
    from archsearch.blocks import Cost

    assert b.admits(Cost(5 * 10**6, 10**9, 0))
    assert not b.admits(Cost(5 * 10**6 + 1, 10, 0))
    assert not b.admits(Cost(1, 10**9 + 1, 0))
    assert Budget().admits(Cost(10**12, 10**15, 0))


def test_format_si() -> None:
    assert format_si(4_500_000_000) == "4.5G"
    assert format_si(25_557_032) == "25.6M"
    assert format_si(999) == "999"


def test_cost_arithmetic_is_elementwise() -> None:
    from archsearch.blocks import Cost

    a, b = Cost(1, 2, 3), Cost(10, 20, 30)
    assert a + b == Cost(11, 22, 33)
    assert 3 * a == a * 3 == Cost(3, 6, 9)
    assert a.activation_bytes == 12
    with pytest.raises(TypeError):
        a + (1, 2, 3)  # type: ignore[operator]  # noqa: RUF005 - the operator under test
    with pytest.raises(TypeError):
        a * 1.5  # type: ignore[operator]
