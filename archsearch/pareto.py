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
    """True for the rows no other row dominates (non-finite rows are never on the front).

    Sweeps the rows in lexicographic order, comparing each with the front found so far:
    O(n * front * m), fit for hundreds of thousands of trials.
    """
    v = np.asarray(values, dtype=np.float64)
    mask = np.zeros(len(v), dtype=bool)
    finite = np.flatnonzero(_finite_rows(v))
    if finite.size == 0:
        return mask
    order = finite[np.lexsort(v[finite].T[::-1])]
    front: list[int] = []
    front_vals = np.empty((0, v.shape[1]))
    for i in order:
        x = v[i]
        # A row sorted later cannot dominate an earlier one, so only check the front.
        if front and np.any(np.all(front_vals <= x, axis=1) & np.any(front_vals < x, axis=1)):
            continue
        front.append(int(i))
        front_vals = np.vstack([front_vals, x])
    mask[front] = True
    return mask


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
