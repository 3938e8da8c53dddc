"""Pareto dominance in numpy: non-dominated sorting, crowding distance, the first front.

All functions take an ``(n, m)`` array of objective values to *minimise* (use
:func:`to_minimisation` for mixed directions). Rows with a NaN or infinite value are dominated
by every finite row (they rank last), so a failed evaluation never enters a front.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from archsearch.errors import UserError
from archsearch.limits import MAX_FRONT_COMPARISONS


def to_minimisation(values: ArrayLike, directions: Sequence[str]) -> NDArray[np.float64]:
    """Negates the columns whose direction is ``"max"``; non-finite values become +inf."""
    v = np.array(values, dtype=np.float64, ndmin=2)
    if v.shape[1] != len(directions):
        raise ValueError(f"{v.shape[1]} objective columns but {len(directions)} directions")
    signs = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    v = np.asarray(v * signs, dtype=np.float64)
    v[~np.isfinite(v)] = np.inf
    return v


def _finite_rows(v: NDArray[np.float64]) -> NDArray[np.bool_]:
    return np.asarray(np.all(np.isfinite(v), axis=1), dtype=np.bool_)


def non_dominated_ranks(values: ArrayLike) -> NDArray[np.int64]:
    """The front index of each row (0 = non-dominated), by Deb et al.'s fast sort (NSGA-II).

    Rows with non-finite values all get the rank after the last finite front. O(n^2 m).
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    ranks = np.full(n, -1, dtype=np.int64)
    finite = _finite_rows(v)
    idx = np.flatnonzero(finite)
    f = v[idx]
    # dom[i, j]: row i dominates row j
    le = np.all(f[:, None, :] <= f[None, :, :], axis=2)
    lt = np.any(f[:, None, :] < f[None, :, :], axis=2)
    dom = le & lt
    dominated_by = dom.sum(axis=0)
    rank = 0
    current = np.flatnonzero(dominated_by == 0)
    remaining = dominated_by.copy()
    while current.size:
        ranks[idx[current]] = rank
        remaining[current] = -1
        remaining -= dom[current].sum(axis=0)
        current = np.flatnonzero(remaining == 0)
        rank += 1
    ranks[~finite] = rank
    return ranks


def crowding_distance(values: ArrayLike) -> NDArray[np.float64]:
    """NSGA-II's crowding distance of each row within its set (boundary rows get +inf)."""
    v = np.asarray(values, dtype=np.float64)
    n, m = v.shape
    dist = np.zeros(n)
    if n <= 2:
        dist[:] = np.inf
        return dist
    for k in range(m):
        order = np.argsort(v[:, k], kind="stable")
        col = v[order, k]
        dist[order[0]] = dist[order[-1]] = np.inf
        if not (np.isfinite(col[0]) and np.isfinite(col[-1])) or col[-1] == col[0]:
            continue  # no finite spread along this objective
        with np.errstate(invalid="ignore"):
            dist[order[1:-1]] += (col[2:] - col[:-2]) / (col[-1] - col[0])
    return dist


def pareto_front_mask(values: ArrayLike) -> NDArray[np.bool_]:
    """True for the rows no other row dominates (non-finite rows are never on the front;
    identical rows do not dominate each other, so every copy of a front point is kept).

    One or two objectives: sorted by the first, a row is on the front when it is the best of
    its ties and beats every row before them on the second, O(n log n) (a million rows in a
    fraction of a second). Three or more: a block-nested-loop skyline over the rows sorted by
    their normalised sum (a dominating row sorts first), each block compared with the front
    found so far, strongest points first, O(n * front * m).

    Raises:
        UserError: three or more objectives whose front is so large that the comparisons
            would exceed :data:`archsearch.limits.MAX_FRONT_COMPARISONS`.
    """
    v = np.asarray(values, dtype=np.float64)
    mask = np.zeros(len(v), dtype=bool)
    finite = np.flatnonzero(_finite_rows(v))
    if finite.size == 0:
        return mask
    f = v[finite]
    if f.shape[1] == 1:
        mask[finite] = f[:, 0] == f[:, 0].min()
    elif f.shape[1] == 2:
        mask[finite] = _front_2d(f[:, 0], f[:, 1])
    else:
        mask[finite] = _skyline(f)
    return mask


def _front_2d(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.bool_]:
    order = np.argsort(a)
    a, b = a[order], b[order]
    new = np.concatenate(([True], a[1:] != a[:-1]))
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    best_in_group = np.minimum.reduceat(b, starts)
    best_before = np.minimum.accumulate(np.concatenate(([np.inf], best_in_group[:-1])))
    keep = np.zeros(len(a), dtype=bool)
    keep[order] = (b == best_in_group[group]) & (b < best_before[group])
    return keep


_BLOCK = 256
"""Rows compared at once by :func:`_skyline`."""


def _beaten(against: NDArray[np.float64], rows: NDArray[np.float64]) -> NDArray[np.bool_]:
    """For each of ``rows``: does a row of ``against`` dominate it?"""
    le = np.ones((len(rows), len(against)), dtype=bool)
    lt = np.zeros_like(le)
    for k in range(rows.shape[1]):
        x, y = against[None, :, k], rows[:, k, None]
        le &= x <= y
        lt |= x < y
    return np.asarray((le & lt).any(axis=1), dtype=np.bool_)


def _skyline(p: NDArray[np.float64]) -> NDArray[np.bool_]:
    """The non-dominated rows of ``p`` (finite, three or more columns)."""
    n, m = p.shape
    span = np.ptp(p, axis=0)
    # A row that dominates another has a smaller normalised sum (up to rounding, which the
    # final pass covers), and a row with a small sum dominates much: sweep by the sum and
    # compare with the strongest front points first.
    strength = ((p - p.min(axis=0)) / np.where(span > 0, span, 1.0)).sum(axis=1)
    order = np.argsort(strength, kind="stable")
    front = np.empty(0, dtype=np.int64)
    work = 0
    for start in range(0, n, _BLOCK):
        idx = order[start : start + _BLOCK]
        for lo in range(0, len(front), 16 * _BLOCK):
            if idx.size == 0:
                break
            against = p[front[lo : lo + 16 * _BLOCK]]
            work += idx.size * len(against)
            idx = idx[~_beaten(against, p[idx])]
        if idx.size > 1:
            work += idx.size * idx.size
            idx = idx[~_beaten(p[idx], p[idx])]
        if work > MAX_FRONT_COMPARISONS:
            raise UserError(
                f"pareto: the front over {m} objectives holds {len(front) + idx.size:,} or "
                f"more of {n:,} points, too many to compute here; use fewer objectives or "
                "narrow the trials with --where"
            )
        front = np.concatenate((front, idx))  # stays sorted by strength
    if len(front) ** 2 + work > MAX_FRONT_COMPARISONS:
        raise UserError(
            f"pareto: the front over {m} objectives holds {len(front):,} of {n:,} points, too "
            "many to compute here; use fewer objectives or narrow the trials with --where"
        )
    if len(front) > 1:  # rows whose sums tied by rounding: a later one may beat an earlier
        keep_front = np.ones(len(front), dtype=bool)
        for lo in range(0, len(front), _BLOCK):
            part = front[lo : lo + _BLOCK]
            keep_front[lo : lo + _BLOCK] = ~_beaten(p[front], p[part])
        front = front[keep_front]
    keep = np.zeros(n, dtype=bool)
    keep[front] = True
    return keep


def hypervolume(points: ArrayLike, reference: ArrayLike) -> float:
    """The volume dominated by ``points`` (to minimise) and bounded by ``reference``.

    Points that do not dominate the reference strictly in every objective add nothing.
    Two objectives: one sweep over the sorted front, O(n log n). More: slicing objectives
    (While et al., "A faster algorithm for calculating hypervolume", IEEE TEC 2006, HSO),
    exponential in the dimension; meant for the few objectives of a search.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, np.size(reference))
    ref = np.asarray(reference, dtype=np.float64)
    p = p[np.all(np.isfinite(p), axis=1) & np.all(p < ref, axis=1)]
    if len(p) == 0:
        return 0.0
    p = p[non_dominated_ranks(p) == 0]
    return _hso(np.unique(p, axis=0), ref)


def _hso(p: NDArray[np.float64], ref: NDArray[np.float64]) -> float:
    if p.shape[1] == 1:
        return float(ref[0] - p[:, 0].min())
    if p.shape[1] == 2:
        order = np.argsort(p[:, 0], kind="stable")
        total, best_y = 0.0, ref[1]
        for x, y in p[order]:
            if y < best_y:
                total += (ref[0] - x) * (best_y - y)
                best_y = y
        return float(total)
    # slice along the last objective: between consecutive values, the points at or below the
    # slice dominate a (d-1)-dimensional region
    order = np.argsort(p[:, -1], kind="stable")
    p = p[order]
    total = 0.0
    for i in range(len(p)):
        upper = p[i + 1, -1] if i + 1 < len(p) else ref[-1]
        depth = upper - p[i, -1]
        if depth > 0:
            head = p[: i + 1, :-1]
            head = head[non_dominated_ranks(head) == 0]
            total += depth * _hso(head, ref[:-1])
    return float(total)


def front_rows(
    rows: Sequence[Mapping[str, Any]], objectives: Sequence[tuple[str, str]]
) -> list[dict[str, Any]]:
    """The non-dominated rows for ``objectives`` (``(metric, "min"|"max")``), sorted by the
    first objective, best first; a row with a NaN objective never qualifies."""
    if not rows:
        return []
    names = [m for m, _ in objectives]
    values = to_minimisation([[r[m] for m in names] for r in rows], [d for _, d in objectives])
    front = [dict(r) for r, keep in zip(rows, pareto_front_mask(values), strict=True) if keep]
    first, direction = objectives[0]
    front.sort(key=lambda r: -r[first] if direction == "max" else r[first])
    return front
