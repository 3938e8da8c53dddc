"""A run's columns (``trial_columns``) against the rows they project, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import func, select

from archsearch.cost import count
from archsearch.db import Store, TrialRecord
from archsearch.db.models import TrialColumnsModel
from archsearch.expr import parse_expr
from archsearch.pareto import front_rows
from archsearch.spaces import Space
from tests.db.test_store import config


def expected(store: Store, run: int, metrics: list[str]) -> dict[int, dict[str, float]]:
    rows = store.results(run, metrics=metrics)
    return {r["trial"]: r for r in rows}


def assert_columns_match(store: Store, run: int) -> None:
    metrics = store.metrics(run)
    cols = store.run_columns(run)
    want = expected(store, run, metrics)
    numbers = {t.id: t.number for t in _trial_models(store, run)}
    assert sorted(numbers[int(i)] for i in cols.trial_ids) == sorted(want)
    assert list(cols.trial_ids) == sorted(cols.trial_ids)
    for j, tid in enumerate(cols.trial_ids):
        row = want[numbers[int(tid)]]
        for name in ["params", "macs", "activations", *metrics]:
            a, b = cols.column(name)[j], float(row[name])
            assert (math.isnan(a) and math.isnan(b)) or a == b, (name, a, b)


def _trial_models(store: Store, run: int) -> list:  # type: ignore[type-arg]
    from archsearch.db.models import TrialModel

    with store.session() as s:
        return list(s.scalars(select(TrialModel).where(TrialModel.run_id == run)))


def test_columns_project_complete_trials_through_merges(db_url: str, hybrid: Space) -> None:
    store = Store(db_url)
    run = store.create_run(config(hybrid))
    other = store.create_run(config(hybrid))
    archs = [hybrid.sample(seed=s) for s in range(140)]
    # one trial at a time: batches of one merge into levels of 8 and 64
    for i, a in enumerate(archs[:90]):
        values = {"entropy": float(i), "rho": math.nan if i % 7 == 0 else i / 100}
        if i % 11 == 0:
            values["extra"] = -float(i)
        state = "failed" if i % 13 == 5 else "complete"
        store.add_trials(run, [TrialRecord(a, count(a), values, state=state)])
    # queued, then finished in a batch: complete, failed and pruned
    queued = store.queue_trials(run, [(a, count(a)) for a in archs[90:120]])
    outcomes = [
        (tid, {"entropy": 1000.0 + k}, ["complete", "failed", "pruned"][k % 3], None)
        for k, tid in enumerate(queued)
    ]
    store.finish_trials(outcomes)
    store.add_trials(other, [TrialRecord(a, count(a), {"entropy": 1.0}) for a in archs[:20]])
    assert_columns_match(store, run)
    assert_columns_match(store, other)
    with store.session() as s:
        n_rows = s.scalar(
            select(func.count())
            .select_from(TrialColumnsModel)
            .where(TrialColumnsModel.run_id == run)
        )
    assert n_rows < 20  # 90 single batches merged
    store.delete_run(run)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(TrialColumnsModel)) >= 1
        left = s.scalars(select(TrialColumnsModel.run_id).distinct()).all()
    assert left == [other]
    assert_columns_match(store, other)


def test_front_from_columns_equals_front_from_rows(db_url: str, hybrid: Space) -> None:
    store = Store(db_url)
    run = store.create_run(config(hybrid))
    rng = np.random.default_rng(0)
    recs = []
    for s in range(300):
        a = hybrid.sample(seed=s)
        acc = float(rng.integers(0, 20))  # ties and copies
        recs.append(
            TrialRecord(a, count(a), {"acc": math.nan if s % 17 == 0 else acc, "lat": s % 9})
        )
    store.add_trials(run, recs)
    everything = store.results(run, metrics=["acc", "lat"])
    for objectives in (
        [("macs", "min"), ("acc", "max")],
        [("acc", "max"), ("lat", "min"), ("params", "min")],
        [("acc", "max")],
    ):
        got = store.pareto(run, objectives, extra=["lat"])
        want = front_rows(everything, objectives)
        assert [r["trial"] for r in got] == [r["trial"] for r in want]
    # the filter: a comparison with a missing value is unknown, also under `not`
    where = parse_expr("not (acc < 5) and lat <= 6")
    got = store.pareto(run, [("macs", "min"), ("acc", "max")], where=where)
    in_sql = store.results(run, metrics=["acc", "lat"], where=where)
    assert all(not math.isnan(r["acc"]) for r in in_sql)
    want = front_rows(in_sql, [("macs", "min"), ("acc", "max")])
    assert [r["trial"] for r in got] == [r["trial"] for r in want]


@pytest.mark.parametrize(
    "text",
    [
        "acc > 5",
        "not (acc > 5)",
        "not (acc > 5 or lat < 3)",
        "acc >= 5 and not lat = 2 or macs < 100M",
        "1 < lat < 7 and not (not acc <= 10)",
        "1 < 2",
        "not 2 < 1 and acc > 3",
    ],
)
def test_filter_on_arrays_agrees_with_the_sql_filter(
    sqlite_url: str, hybrid: Space, text: str
) -> None:
    store = Store(sqlite_url)
    run = store.create_run(config(hybrid))
    recs = []
    for s in range(60):
        a = hybrid.sample(seed=s)
        acc = math.nan if s % 4 == 0 else float(s % 15)
        lat = math.nan if s % 5 == 0 else float(s % 9)
        recs.append(TrialRecord(a, count(a), {"acc": acc, "lat": lat}))
    store.add_trials(run, recs)
    expr = parse_expr(text)
    in_sql = {r["trial"] for r in store.results(run, metrics=["acc", "lat"], where=expr)}
    cols = store.run_columns(run)
    keep = expr.evaluate_columns({n: cols.column(n) for n in expr.names}, len(cols))
    numbers = {t.id: t.number for t in _trial_models(store, run)}
    assert {numbers[int(i)] for i in cols.trial_ids[keep]} == in_sql


def test_upgrade_from_0006_fills_the_columns(db_url: str, hybrid: Space) -> None:
    from alembic import command

    store = Store(db_url)
    run = store.create_run(config(hybrid))
    archs = [hybrid.sample(seed=s) for s in range(40)]
    values = [{"entropy": s / 3, "rho": math.nan if s % 3 else s / 7} for s in range(40)]
    store.add_trials(
        run, [TrialRecord(a, count(a), v) for a, v in zip(archs[:30], values[:30], strict=True)]
    )
    store.add_trials(run, [TrialRecord(a, count(a), {}, state="failed") for a in archs[30:]])
    before = store.run_columns(run)
    assert len(before) == 30
    with store.engine.begin() as conn:
        command.downgrade(store._alembic(conn), "0006")
    assert store.current_revision() == "0006"
    upgraded = Store(db_url, upgrade=True)
    assert upgraded.current_revision() == upgraded.head_revision()
    after = upgraded.run_columns(run)
    assert after.trial_ids.tolist() == before.trial_ids.tolist()
    for name in ("params", "macs", "activations", "entropy", "rho"):
        np.testing.assert_array_equal(after.column(name), before.column(name))
    assert upgraded.metrics(run) == ["entropy", "rho"]
    assert_columns_match(upgraded, run)
