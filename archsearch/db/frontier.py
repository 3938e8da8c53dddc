"""The Pareto frontier out of the store, at a million trials.

A front needs only the objective columns of a run's complete trials, not their rows: it reads
the run's columns (:mod:`archsearch.db.columns`, a few dozen rows of packed arrays), evaluates
the filters on the arrays with the database's three-valued logic, computes the front in numpy
(:func:`archsearch.pareto.pareto_front_mask`) and fetches full rows for the front alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select

from archsearch.db import columns
from archsearch.db.architectures import COST_NAMES
from archsearch.db.models import TrialColumnsModel
from archsearch.db.runs import RunsStore
from archsearch.errors import UserError
from archsearch.expr import Expr
from archsearch.pareto import front_rows, pareto_front_mask, to_minimisation


class FrontierStore(RunsStore):
    """Pareto fronts of one run or of several, computed over columns."""

    def run_columns(
        self, run_id: int, names: Sequence[str] | None = None, *, architectures: bool = False
    ) -> columns.RunColumns:
        """The run's complete trials, sorted by trial id, with their costs and metrics as
        arrays (``names`` only, when given, and their architecture ids with
        ``architectures``).

        Raises:
            StoreError: no such run.
        """
        self.require_run(run_id)
        with self.session() as s:
            return columns.read(s, run_id, names, architectures=architectures)

    def columns_version(self, run_id: int) -> tuple[int, int]:
        """Changes whenever a trial of the run completes (its newest ``trial_columns`` row and
        their number): a front computed at one version holds until the next."""
        M = TrialColumnsModel
        with self.session() as s:
            newest, rows = s.execute(
                select(func.max(M.id), func.count()).where(M.run_id == run_id)
            ).one()
        return int(newest or 0), int(rows)

    def pareto(
        self,
        run_id: int,
        objectives: Sequence[tuple[str, str]],
        *,
        where: Expr | None = None,
        extra: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """The run's non-dominated complete trials for ``objectives`` (``(metric,
        "min"|"max")``), as :meth:`results` rows with ``extra`` metrics too, sorted by the first
        objective, best first. A trial with a NaN objective never qualifies; ``where`` keeps
        the trials for which it is true (a comparison with a missing value is unknown).

        Raises:
            UserError: an objective or a name in ``where`` that the run does not have.
        """
        names = [m for m, _ in objectives]
        known = [*COST_NAMES, *self.metrics(run_id)]  # raises for a missing run
        if where is not None:
            where.check_names(known, "--where")
        for m in [*names, *extra]:
            if m not in known:
                raise UserError(
                    f"metric {m!r} is not stored for run {run_id}; choose from {', '.join(known)}"
                )
        cols = self.run_columns(run_id, [*names, *(where.names if where else ())])
        keep = np.ones(len(cols), dtype=bool)
        if where is not None:
            keep = where.evaluate_columns({n: cols.column(n) for n in where.names}, len(cols))
        front = _front({m: cols.column(m) for m in names}, objectives, keep)
        ids = cols.trial_ids[front].tolist()
        rows = self.results(run_id, metrics=[*names, *extra], trial_ids=ids)
        return front_rows(rows, objectives)

    def trials_page(
        self,
        run_id: int,
        *,
        where: Expr | None = None,
        order: str = "trial",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[int, list[dict[str, Any]]]:
        """One page of the run's complete trials that pass ``where``, sorted by ``order`` (a
        cost, a metric or ``trial``; NaN last, ties by trial), as :meth:`results` rows with
        every metric; and how many trials pass.

        Raises:
            UserError: a name the run does not have.
        """
        metrics = self.metrics(run_id)  # raises for a missing run
        known = [*COST_NAMES, *metrics]
        if where is not None:
            where.check_names(known, "where")
        if order != "trial" and order not in known:
            raise UserError(f"order {order!r}: choose trial or one of {', '.join(known)}")
        wanted = [*(where.names if where else ()), *([order] if order != "trial" else [])]
        cols = self.run_columns(run_id, wanted)
        chosen = np.arange(len(cols))
        if where is not None:
            names = {n: cols.column(n) for n in where.names}
            chosen = np.flatnonzero(where.evaluate_columns(names, len(cols)))
        trial_key = cols.trial_ids[chosen].astype(np.float64)
        if order == "trial":
            ranked = np.argsort(-trial_key if descending else trial_key, kind="stable")
        else:
            ranked = np.lexsort((trial_key, _sort_key(cols.column(order)[chosen], descending)))
        page = chosen[ranked[offset : offset + limit]]
        rows = self.results(run_id, metrics=metrics, trial_ids=cols.trial_ids[page].tolist())
        if order == "trial":
            rows.sort(key=lambda r: int(r["trial"]), reverse=descending)
        else:
            values = _sort_key(np.array([float(r[order]) for r in rows]), descending)
            rows = [rows[i] for i in np.lexsort(([r["trial"] for r in rows], values))]
        return len(chosen), rows

    def history(self, run_id: int, metric: str, direction: str) -> dict[str, list[float]]:
        """Every complete trial's value of ``metric`` in trial order, and the best so far
        (``direction``: ``min`` or ``max``; a trial with NaN keeps the best before it)."""
        known = [*COST_NAMES, *self.metrics(run_id)]
        if metric not in known:
            raise UserError(f"metric {metric!r}: choose from {', '.join(known)}")
        cols = self.run_columns(run_id, [metric])
        values = cols.column(metric)
        signed = -values if direction == "max" else values
        best = np.minimum.accumulate(np.where(np.isnan(signed), np.inf, signed))
        best = -best if direction == "max" else best
        return {"value": values.tolist(), "best": best.tolist()}

    def pareto_across(
        self,
        run_ids: Sequence[int],
        objectives: Sequence[tuple[str, str]],
        *,
        filters: Mapping[int, Expr | None] | None = None,
        where: Expr | None = None,
        extra: Sequence[str] = (),
    ) -> tuple[list[dict[str, Any]], int]:
        """The front over several runs' complete trials, one row per architecture (as
        :meth:`results_across`: each metric from the newest run that measured it), and the
        number of architectures the runs hold after the filters.

        ``filters`` maps a run to a filter of that run's own trials (its budget, say);
        ``where`` filters the merged rows.

        Raises:
            UserError: a run that does not exist, or a name that none of the runs has.
        """
        ids = sorted(set(run_ids))
        stored = {r: set(self.metrics(r)) for r in ids}  # raises for a missing run
        known = set(COST_NAMES).union(*stored.values())
        names = [m for m, _ in objectives]
        if where is not None:
            where.check_names(known, "--where")
        for m in [*names, *extra]:
            if m not in known:
                raise UserError(
                    f"metric {m!r} is not stored for runs {', '.join(map(str, ids))}; choose "
                    f"from {', '.join(sorted(known))}"
                )
        wanted = list(dict.fromkeys([*names, *(sorted(where.names) if where else [])]))
        merged_arch: list[NDArray[np.int64]] = []
        merged: list[dict[str, NDArray[np.float64]]] = []
        for run_id in ids:  # oldest first: a newer run's values replace an older one's
            run_filter = (filters or {}).get(run_id)
            needed = [*wanted, *(run_filter.names if run_filter else ())]
            cols = self.run_columns(run_id, needed, architectures=True)
            ok = np.ones(len(cols), dtype=bool)
            if run_filter is not None:
                ok = run_filter.evaluate_columns(
                    {n: cols.column(n) for n in run_filter.names}, len(cols)
                )
            merged_arch.append(cols.architecture_ids[ok])
            merged.append({m: cols.column(m)[ok] for m in wanted})
        universe = np.unique(np.concatenate(merged_arch)) if merged_arch else np.empty(0, int)
        values = {m: np.full(len(universe), np.nan) for m in wanted}
        for arch, run_values in zip(merged_arch, merged, strict=True):
            pos = np.searchsorted(universe, arch)
            for m in wanted:
                present = ~np.isnan(run_values[m])
                values[m][pos[present]] = run_values[m][present]
        keep = np.ones(len(universe), dtype=bool)
        if where is not None:
            keep = where.evaluate_columns(values, len(universe))
        front = _front(values, objectives, keep)
        rows = self.results_across(
            ids,
            metrics=list(dict.fromkeys([*names, *extra])),
            filters=filters,
            architecture_ids=universe[front].tolist(),
        )
        return front_rows(rows, objectives), int(keep.sum())


def _sort_key(values: NDArray[np.float64], descending: bool) -> NDArray[np.float64]:
    """Values to sort ascending: negated for ``descending``, NaN last either way."""
    key = -values if descending else values.copy()
    key[np.isnan(key)] = np.inf
    return key


def _front(
    columns: Mapping[str, NDArray[np.float64]],
    objectives: Sequence[tuple[str, str]],
    keep: NDArray[np.bool_],
) -> NDArray[np.int64]:
    """Indices of the rows (among ``keep``) on the front for ``objectives``."""
    chosen = np.flatnonzero(keep)
    if chosen.size == 0:
        return chosen
    matrix = np.column_stack([columns[m][chosen] for m, _ in objectives])
    values = to_minimisation(matrix, [d for _, d in objectives])
    return chosen[pareto_front_mask(values)]
