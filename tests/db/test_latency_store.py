"""Latency tables in the store, on SQLite and PostgreSQL: keys, provenance, idempotence,
concurrent writers, identities kept apart, failures leaving nothing, calibration, migration."""

from __future__ import annotations

import multiprocessing as mp
import traceback

import pytest
from sqlalchemy import text

from archsearch import profiling
from archsearch.cost.devices import create_device
from archsearch.cost.latency import LAYOUTS, block_signature
from archsearch.db import Store
from archsearch.errors import StoreError
from archsearch.spaces import Space, load_space
from tests.conftest import FIXTURES

FAST = {"warmup": 1, "repeats": 3}


@pytest.fixture(scope="module")
def tiny() -> Space:
    return load_space(str(FIXTURES / "tiny_space.yaml"))


def test_entries_keys_provenance_and_idempotence(db_url: str, tiny: Space) -> None:
    store, dev = Store(db_url), create_device("cpu", threads=1)
    items = profiling.space_items(dev, tiny)
    assert len(items) == 2 * len(tiny.block_options())  # each block at both input layouts
    report = profiling.profile(store, dev, items, **FAST)
    assert report.measured == report.requested == len(items) and report.skipped == 0
    entries = store.latency_entries(dev.key)
    assert {e["signature"] for e in entries} == {block_signature(*item) for item in items}
    e = entries[0]
    assert e["repeats"] == 3 and e["warmup"] == 1 and e["host"] and e["measured_at"]
    assert 0 < e["p10_ms"] <= e["median_ms"] <= e["p90_ms"] and e["ref_ms"] > 0
    assert e["spec"]["in_shape"] and e["spec"]["type"] == e["block_type"]
    assert {e["spec"]["layout"] for e in entries} == set(LAYOUTS)
    assert {e["out_layout"] for e in entries} <= set(LAYOUTS)
    again = profiling.profile(store, dev, items, **FAST)
    assert again.measured == 0 and again.skipped == len(items)
    assert len(store.latency_entries(dev.key)) == len(items)


def test_the_table_walk_follows_the_networks_layouts(sqlite_url: str, tiny: Space) -> None:
    # Output layouts recorded while profiling blocks alone reproduce, block by block, the
    # layouts a built network hands on (patchify's LayerNorm hands on channels-last).
    store, dev = Store(sqlite_url), create_device("cpu", threads=1)
    profiling.profile(store, dev, profiling.space_items(dev, tiny), warmup=0, repeats=1)
    model = profiling.load_model(store, dev)
    walks = [model.items(a) for a in (tiny.sample(seed=i) for i in range(8))]
    assert walks == [profiling.network_items(dev, tiny.sample(seed=i)) for i in range(8)]
    assert {layout for walk in walks for *_, layout in walk} == {"nchw", "nhwc"}


def test_identities_are_never_mixed(db_url: str, tiny: Space) -> None:
    store = Store(db_url)
    one, two = create_device("cpu", threads=1), create_device("cpu", threads=2)
    items = profiling.space_items(one, tiny)[:5]
    profiling.profile(store, one, items, **FAST)
    assert len(profiling.load_model(store, one).entries) == 5
    assert profiling.load_model(store, two).entries == {}
    assert profiling.profile(store, two, items, **FAST).measured == 5


def test_a_failed_chunk_stores_nothing(db_url: str, tiny: Space, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store, dev = Store(db_url), create_device("cpu", threads=1)
    items = profiling.space_items(dev, tiny)
    real = type(dev).runner
    calls = {"n": 0}

    def flaky(self, module, shape, layout=None):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:  # the fourth block of the first chunk (after the reference)
            raise RuntimeError("device lost")
        return real(self, module, shape, layout)

    monkeypatch.setattr(type(dev), "runner", flaky)
    with pytest.raises(RuntimeError, match="device lost"):
        profiling.profile(store, dev, items, chunk=8, **FAST)
    assert store.latency_entries(dev.key) == []


def _writer(url: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        space = load_space(str(FIXTURES / "tiny_space.yaml"))
        dev = create_device("cpu", threads=1)
        profiling.profile(
            Store(url),
            dev,
            profiling.space_items(dev, space),
            warmup=1,
            repeats=2,
            chunk=4,
        )
        queue.put("")
    except Exception:
        queue.put(traceback.format_exc(limit=3))


@pytest.mark.slow
def test_two_writers_profile_the_same_blocks(db_url: str, tiny: Space) -> None:
    Store(db_url)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(db_url, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    errors = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert errors == ["", ""]
    store = Store(db_url)
    dev = create_device("cpu", threads=1)
    sigs = [e["signature"] for e in store.latency_entries(dev.key)]
    assert len(sigs) == len(set(sigs)) == len(profiling.space_items(dev, tiny))


def test_calibration_fit_and_predictions(db_url: str, tiny: Space) -> None:
    store, dev = Store(db_url), create_device("cpu", threads=1)
    archs = [tiny.sample(seed=i) for i in range(4)]
    corr = profiling.calibrate(store, dev, archs)  # fills the missing entries itself
    fit = store.latest_latency_fit(dev.key)
    assert fit is not None and fit["scale"] == pytest.approx(corr.scale) and fit["n"] == 4
    assert [r["digest"] for r in fit["residuals"]] == [a.digest for a in archs]
    model = profiling.load_model(store, dev)
    assert model.scale == pytest.approx(corr.scale) and model.ref_ms == pytest.approx(
        fit["ref_ms"]
    )
    rows = store.network_latencies(dev.key, purpose="calibration")
    assert [r["digest"] for r in rows] == [a.digest for a in archs]
    for r, a in zip(rows, archs, strict=True):
        assert r["block_sum"] == pytest.approx(model.block_sum(a))
        assert r["median_ms"] > 0 and r["repeats"] == profiling.NET_REPEATS
    report = profiling.check(store, dev, [tiny.sample(seed=9)])
    (row,) = report.rows
    model = profiling.load_model(store, dev)  # the check profiled the new network's blocks
    assert row.predicted_ms == pytest.approx(
        model.predict(tiny.sample(seed=9), ref_ms=report.session_ref_ms)
    )
    assert len(store.network_latencies(dev.key, purpose="check")) == 1


def test_lazy_filling_through_the_evaluator(db_url: str, tiny: Space) -> None:
    from archsearch.evaluators import EVALUATORS

    store = Store(db_url)
    ev = EVALUATORS.create("latency@cpu", threads=1)
    ev.bind(store)
    arch = tiny.sample(seed=5)
    (out,) = ev.evaluate([arch])
    assert out["latency@cpu"] > 0
    dev = create_device("cpu", threads=1)
    # Exactly the blocks of the network, at the layouts they receive in it.
    items = profiling.network_items(dev, arch)
    assert {e["signature"] for e in store.latency_entries(dev.key)} == {
        block_signature(*item) for item in items
    }
    assert profiling.load_model(store, dev).items(arch) == items


def test_migration_from_0001_keeps_runs(db_url: str, hybrid: Space) -> None:
    from alembic import command

    from archsearch.cost import count
    from archsearch.db import RunConfig, TrialRecord

    store = Store(db_url)
    run = store.create_run(
        RunConfig(
            space="hybrid",
            space_yaml="",
            strategy="random",
            strategy_config={},
            objectives=["entropy:max"],
            evaluators={},
        )
    )
    arch = hybrid.sample(seed=1)
    store.add_trials(run, [TrialRecord(arch, count(arch), {"entropy": 1.0})])
    with store.engine.execution_options(archsearch_write=True).connect() as conn, conn.begin():
        command.downgrade(store._alembic(conn), "0001")
    head = store.head_revision()
    with pytest.raises(StoreError, match=f"revision 0001, this archsearch needs {head}"):
        Store(db_url)
    before, after = Store(db_url, upgrade=True).upgrade()
    assert (before, after) == (head, head)
    store = Store(db_url)
    assert [t.digest for t in store.trials(run)] == [arch.digest]
    with store.session() as s:
        assert s.execute(text("SELECT COUNT(*) FROM latency_entries")).scalar() == 0
