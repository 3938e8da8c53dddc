"""The store, the same suite on SQLite and on the real PostgreSQL (``db_url`` fixture)."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from archsearch.cost import count
from archsearch.db import RunConfig, Store, TrialRecord, resolve_url
from archsearch.errors import StoreError, UserError
from archsearch.evaluators import Entropy
from archsearch.expr import parse_expr
from archsearch.pareto import pareto_front_mask, to_minimisation
from archsearch.spaces import Space


def config(space: Space, **kw) -> RunConfig:  # type: ignore[no-untyped-def]
    base = dict(
        space="hybrid",
        space_yaml=space.source or "",
        strategy="random",
        strategy_config={"seed": 0},
        objectives=["entropy:max"],
        evaluators={"entropy": {}},
    )
    return RunConfig(**{**base, **kw})


def records(space: Space, seeds: range) -> list[TrialRecord]:
    archs = [space.sample(seed=s) for s in seeds]
    return [
        TrialRecord(a, count(a), v) for a, v in zip(archs, Entropy().evaluate(archs), strict=True)
    ]


def test_schema_is_created_and_versioned(db_url: str) -> None:
    store = Store(db_url)
    assert store.current_revision() == store.head_revision()
    Store(db_url)  # reopening is a no-op


def test_runs_trials_scores_round_trip(db_url: str, hybrid: Space) -> None:
    store = Store(db_url)
    run = store.create_run(config(hybrid, budget_macs=10**9, constraints=["rho < 1"]))
    recs = records(hybrid, range(20))
    assert store.add_trials(run, recs[:7]) == list(range(7))
    assert store.add_trials(run, recs[7:]) == list(range(7, 20))
    info = store.get_run(run)
    assert info.status == "running" and info.n_complete == 20
    assert info.config.budget_macs == 10**9 and info.config.constraints == ["rho < 1"]
    stored = store.trials(run)
    assert [t.number for t in stored] == list(range(20))
    assert [t.digest for t in stored] == [r.arch.digest for r in recs]
    assert stored[3].cost == recs[3].cost
    assert stored[3].values["entropy"] == pytest.approx(recs[3].values["entropy"])
    assert store.metrics(run) == ["entropy", "rho"]
    store.set_run_status(run, "finished")
    assert store.get_run(run).status == "finished" and store.get_run(run).finished_at


def test_trials_keep_the_device_their_scores_ran_on(db_url: str, hybrid: Space) -> None:
    from dataclasses import replace

    store = Store(db_url)
    run = store.create_run(config(hybrid))
    recs = records(hybrid, range(6))
    gpu = "cuda:0 (NVIDIA H200 with a name far longer than the sixty-four characters kept)"
    store.add_trials(run, [replace(r, device="cpu") for r in recs[:2]] + recs[2:3])
    queued = store.queue_trials(run, [(r.arch, r.cost) for r in recs[3:]], worker="w:1")
    store.finish_trials([(t, {"entropy": 1.0}, "complete", None) for t in queued], device=gpu)
    assert [t.device for t in store.trials(run)] == ["cpu", "cpu", None, *[gpu[:64]] * 3]
    assert store.run_devices(run) == {"cpu": 2, gpu[:64]: 3}


def test_architectures_are_shared_by_digest(db_url: str, hybrid: Space) -> None:
    store = Store(db_url)
    a = store.create_run(config(hybrid))
    b = store.create_run(config(hybrid))
    recs = records(hybrid, range(5))
    store.add_trials(a, recs)
    store.add_trials(b, recs[2:])
    with store.session() as s:
        assert s.execute(text("SELECT COUNT(*) FROM architectures")).scalar() == 5
    info = store.architecture(recs[3].arch.digest[:10])
    assert info.cost == recs[3].cost
    assert [(t["run"], t["trial"]) for t in info.trials] == [(a, 3), (b, 1)]


def test_same_digest_twice_in_a_run_is_refused(db_url: str, hybrid: Space) -> None:
    store = Store(db_url)
    run = store.create_run(config(hybrid))
    recs = records(hybrid, range(3))
    store.add_trials(run, recs)
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        store.add_trials(run, recs[:1])
    assert len(store.trials(run)) == 3  # the failed batch left nothing behind


def test_failed_batch_leaves_nothing(
    db_url: str, hybrid: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(db_url)
    run = store.create_run(config(hybrid))
    store.add_trials(run, records(hybrid, range(3)))
    upsert = Store._upsert_architectures

    def upsert_then_fail(self, s, recs):  # type: ignore[no-untyped-def]
        upsert(self, s, recs)  # the new architectures are written in this transaction...
        raise RuntimeError("disk full")  # ...and then the batch fails

    monkeypatch.setattr(Store, "_upsert_architectures", upsert_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        store.add_trials(run, records(hybrid, range(10, 14)))
    with store.session() as s:
        assert s.execute(text("SELECT COUNT(*) FROM architectures")).scalar() == 3
    assert len(store.trials(run)) == 3


def test_rollback_on_error_inside_transaction(db_url: str, hybrid: Space) -> None:
    store = Store(db_url)
    run = store.create_run(config(hybrid))
    with pytest.raises(RuntimeError), store.transaction() as s:
        s.execute(text("UPDATE runs SET status = 'failed' WHERE id = :i"), {"i": run})
        raise RuntimeError("boom")
    assert store.get_run(run).status == "running"


def test_nan_and_inf_scores(db_url: str, hybrid: Space) -> None:
    store = Store(db_url)
    run = store.create_run(config(hybrid))
    arch = hybrid.sample(seed=1)
    store.add_trials(run, [TrialRecord(arch, count(arch), {"entropy": math.nan, "rho": math.inf})])
    (t,) = store.trials(run)
    assert math.isnan(t.values["entropy"]) and t.values["rho"] == math.inf
    assert store.pareto(run, [("macs", "min"), ("entropy", "max")]) == []


def test_pareto_matches_numpy_on_all_rows(db_url: str, hybrid: Space) -> None:
    store = Store(db_url)
    run = store.create_run(config(hybrid))
    recs = records(hybrid, range(60))
    store.add_trials(run, recs)
    front = store.pareto(run, [("macs", "min"), ("entropy", "max")], extra=["rho"])
    v = to_minimisation([[r.cost.macs, r.values["entropy"]] for r in recs], ["min", "max"])
    expected = {r.arch.digest for r, keep in zip(recs, pareto_front_mask(v), strict=True) if keep}
    assert {r["digest"] for r in front} == expected
    assert [r["macs"] for r in front] == sorted(r["macs"] for r in front)
    assert all("rho" in r for r in front)


def test_where_filters_in_sql_like_python(db_url: str, hybrid: Space) -> None:
    store = Store(db_url)
    run = store.create_run(config(hybrid))
    recs = records(hybrid, range(60))
    store.add_trials(run, recs)
    expr = parse_expr("params < 8M and rho <= 0.4 or macs > 2G")
    rows = store.results(run, metrics=["entropy"], where=expr)
    expected = [
        r.arch.digest
        for r in recs
        if expr.evaluate({**{k: float(v) for k, v in r.cost.as_dict().items()}, **r.values})
    ]
    assert [r["digest"] for r in rows] == expected
    front = store.pareto(run, [("macs", "min"), ("entropy", "max")], where=expr)
    assert {r["digest"] for r in front} <= set(expected)


def test_query_errors_are_user_errors(db_url: str, hybrid: Space) -> None:
    store = Store(db_url)
    run = store.create_run(config(hybrid))
    store.add_trials(run, records(hybrid, range(3)))
    with pytest.raises(UserError, match="unknown metric 'acc'"):
        store.results(run, where=parse_expr("acc > 1"))
    with pytest.raises(UserError, match="metric 'acc' is not stored for run"):
        store.pareto(run, [("acc", "max")])
    with pytest.raises(StoreError, match="there is no run 999"):
        store.get_run(999)
    with pytest.raises(StoreError, match="no architecture with digest"):
        store.architecture("abcdef")
    with pytest.raises(UserError, match="at least 6 hex"):
        store.architecture("xyz")


def test_old_schema_is_refused_until_upgrade(db_url: str) -> None:
    store = Store(db_url)
    with store.transaction() as s:
        s.execute(text("UPDATE archsearch_version SET version_num = '0000'"))
    with pytest.raises(StoreError, match="revision 0000.*archsearch db upgrade"):
        Store(db_url)


def test_foreign_tables_are_not_touched(db_url: str) -> None:
    store = Store(db_url)
    with store.transaction() as s:
        s.execute(text("DROP TABLE archsearch_version"))
    with pytest.raises(StoreError, match="has a 'runs' table but no archsearch schema version"):
        Store(db_url)


def test_url_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHSEARCH_DB", raising=False)
    assert resolve_url(None) == "sqlite:///archsearch.db"
    monkeypatch.setenv("ARCHSEARCH_DB", "postgresql://u@h/d")
    assert resolve_url(None) == "postgresql+psycopg://u@h/d"
    assert resolve_url("postgres://u:pw@h:5/d") == "postgresql+psycopg://u:pw@h:5/d"
    with pytest.raises(StoreError, match="is not a database URL"):
        resolve_url("not a url")


def test_unreachable_database_is_one_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot reach the database .*127.0.0.1:1/x"):
        Store("postgresql://nobody@127.0.0.1:1/x")


def test_sqlite_is_in_wal_mode(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    with store.session() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA busy_timeout")).scalar() == 60000


def test_migrations_match_the_models(db_url: str) -> None:
    # A model changed without a migration would show here as a difference.
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from archsearch.db.engine import VERSION_TABLE
    from archsearch.db.models import Base

    store = Store(db_url)
    with store.engine.connect() as conn:
        opts = {"compare_type": True, "version_table": VERSION_TABLE}
        ctx = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_supernet_rows_keep_pointer_config_and_curve(db_url: str) -> None:
    from archsearch.errors import StoreError

    store = Store(db_url)
    sid = store.create_supernet(
        space="vit-resnas-small", space_digest="abc", checkpoint="", config={"epochs": 2}
    )
    store.update_supernet(sid, checkpoint="/tmp/x.pt")
    store.update_supernet(sid, curve=[{"epoch": 1.0, "train_loss": 1.5}])
    store.update_supernet(sid, status="failed", error="RuntimeError: boom\nmore")
    row = store.get_supernet(sid)
    assert row["checkpoint"] == "/tmp/x.pt" and row["epochs_done"] == 1
    assert row["curve"] == [{"epoch": 1.0, "train_loss": 1.5}]
    assert row["status"] == "failed" and row["error"] == "RuntimeError: boom"
    assert [r["id"] for r in store.list_supernets()] == [sid]
    with pytest.raises(StoreError, match=f"no supernet with id 99 .*stored: {sid}"):
        store.get_supernet(99)


def test_results_across_runs_deduplicate_by_digest_newest_value_wins(
    db_url: str, hybrid: Space
) -> None:
    store = Store(db_url)
    archs = [hybrid.sample(seed=s) for s in range(4)]
    a = store.create_run(config(hybrid))
    b = store.create_run(config(hybrid, objectives=["zen:max"]))
    store.add_trials(
        a, [TrialRecord(x, count(x), {"entropy": float(i)}) for i, x in enumerate(archs[:3])]
    )
    store.add_trials(
        b,
        [
            TrialRecord(archs[2], count(archs[2]), {"entropy": 20.0, "zen": 5.0}),
            TrialRecord(archs[3], count(archs[3]), {"entropy": math.nan, "zen": 7.0}),
        ],
    )
    rows = {r["digest"]: r for r in store.results_across([b, a], metrics=["entropy", "zen"])}
    assert len(rows) == 4
    shared = rows[archs[2].digest]
    assert (shared["entropy"], shared["zen"], shared["run"], shared["runs"]) == (
        20.0,
        5.0,
        b,
        f"{a},{b}",
    )
    only_a = rows[archs[0].digest]
    assert only_a["entropy"] == 0.0 and math.isnan(only_a["zen"]) and only_a["run"] == a
    nan_in_b = rows[archs[3].digest]
    assert math.isnan(nan_in_b["entropy"]) and nan_in_b["zen"] == 7.0
    # a filter per run, in SQL
    rows = store.results_across(
        [a, b], metrics=["entropy"], filters={a: parse_expr("entropy >= 1")}
    )
    assert {r["digest"] for r in rows} == {x.digest for x in archs[1:]}
    with pytest.raises(UserError, match="metric 'nope' is not stored for runs"):
        store.results_across([a, b], metrics=["nope"])
