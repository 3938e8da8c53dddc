"""Non-dominated sorting, crowding distance and the first front, against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from archsearch.pareto import (
    crowding_distance,
    non_dominated_ranks,
    pareto_front_mask,
    to_minimisation,
)

values = st.tuples(st.integers(1, 40), st.integers(1, 3)).flatmap(
    lambda shape: arrays(np.float64, shape, elements=st.integers(0, 6).map(float))
)


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def brute_ranks(v: np.ndarray) -> list[int]:
    remaining = set(range(len(v)))
    ranks = [0] * len(v)
    r = 0
    while remaining:
        front = {i for i in remaining if not any(dominates(v[j], v[i]) for j in remaining)}
        for i in front:
            ranks[i] = r
        remaining -= front
        r += 1
    return ranks


@given(v=values)
def test_ranks_match_brute_force(v: np.ndarray) -> None:
    assert non_dominated_ranks(v).tolist() == brute_ranks(v)


@given(v=values)
def test_front_mask_matches_rank_zero(v: np.ndarray) -> None:
    assert pareto_front_mask(v).tolist() == (non_dominated_ranks(v) == 0).tolist()


def test_nan_rows_rank_last_and_never_on_front() -> None:
    v = np.array([[1.0, 2.0], [np.nan, 0.0], [2.0, 1.0], [3.0, 3.0]])
    ranks = non_dominated_ranks(v)
    assert ranks.tolist() == [0, 2, 0, 1]
    assert pareto_front_mask(v).tolist() == [True, False, True, False]


def test_directions() -> None:
    v = to_minimisation([[1, 5], [2, 9]], ["min", "max"])
    assert v.tolist() == [[1, -5], [2, -9]]
    assert pareto_front_mask(v).tolist() == [True, True]
    assert to_minimisation([[np.nan, 1]], ["min", "min"])[0, 0] == np.inf


def test_crowding_distance() -> None:
    v = np.array([[0.0, 4.0], [1.0, 3.0], [3.0, 1.0], [4.0, 0.0]])
    d = crowding_distance(v)
    assert np.isinf(d[0]) and np.isinf(d[3])
    assert d[1] == (3 - 0) / 4 + (4 - 1) / 4
    assert d[2] == (4 - 1) / 4 + (3 - 0) / 4


def test_hypervolume_known_values() -> None:
    from archsearch.pareto import hypervolume

    assert hypervolume([[1, 2], [2, 1]], [3, 3]) == 3.0
    assert hypervolume([[1, 2], [2, 1], [2, 2], [4, 0]], [3, 3]) == 3.0  # dominated, outside
    assert hypervolume([], [1, 1]) == 0.0
    # three unit-overlapping boxes: 3 x 2 - 3 x 1 + 1
    assert hypervolume([[0, 1, 1], [1, 0, 1], [1, 1, 0]], [2, 2, 2]) == 4.0


def test_hypervolume_matches_monte_carlo() -> None:
    from archsearch.pareto import hypervolume

    rng = np.random.default_rng(0)
    points = rng.random((25, 3))
    samples = rng.random((200_000, 3))
    dominated = np.zeros(len(samples), dtype=bool)
    for p in points:
        dominated |= np.all(samples >= p, axis=1)
    assert hypervolume(points, np.ones(3)) == pytest.approx(dominated.mean(), abs=0.005)


wide = st.tuples(st.integers(1, 1500), st.integers(1, 4), st.integers(2, 50)).flatmap(
    lambda s: arrays(np.float64, s[:2], elements=st.integers(0, s[2]).map(float))
)


@settings(max_examples=25, deadline=None)
@given(v=wide, holes=st.lists(st.integers(0, 1499), max_size=5))
def test_front_mask_matches_brute_force_across_blocks(v: np.ndarray, holes: list[int]) -> None:
    # beyond one block of the skyline (256 rows), with ties, copies and non-finite rows
    for i in holes:
        if i < len(v):
            v[i, i % v.shape[1]] = [np.nan, np.inf, -np.inf][i % 3]
    finite = np.all(np.isfinite(v), axis=1)
    expected = np.zeros(len(v), dtype=bool)
    expected[finite] = non_dominated_ranks(v[finite]) == 0
    assert pareto_front_mask(v).tolist() == expected.tolist()


def test_front_of_a_million_rows_in_two_objectives_keeps_copies() -> None:
    rng = np.random.default_rng(0)
    v = rng.integers(0, 1000, size=(1_000_000, 2)).astype(float)
    v[-1] = v[np.argmin(v[:, 0] + v[:, 1])]  # a copy of a front point
    mask = pareto_front_mask(v)
    front = v[mask]
    assert mask[-1]
    # no front point dominates another, and every other row is dominated by a front point
    assert not any(dominates(a, b) for a in front for b in front)
    rest = v[~mask][:2000]
    assert all(any(dominates(f, r) for f in front) for r in rest)


def test_a_front_too_large_to_compute_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from archsearch import pareto
    from archsearch.errors import UserError

    monkeypatch.setattr(pareto, "MAX_FRONT_COMPARISONS", 10**6)
    x = np.arange(5000.0)
    # objectives that never agree: every row is on the front
    with pytest.raises(UserError, match="front over 3 objectives .* too many .*--where"):
        pareto_front_mask(np.column_stack([x, -x, x % 7]))
