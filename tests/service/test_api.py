"""The JSON API through FastAPI's test client: answers, errors and security."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from archsearch import zoo
from archsearch.cost import count
from archsearch.db import Store, TrialRecord
from archsearch.search import queries
from archsearch.service import ServiceSettings, create_app
from archsearch.service.runs import QUEUE
from archsearch.spaces import Space
from tests.db.test_store import config

TOKEN = "test-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def filled(url: str, hybrid: Space) -> Store:
    store = Store(url)
    run = store.create_run(config(hybrid, objectives=["entropy:max"]))
    recs = []
    for s in range(40):
        a = hybrid.sample(seed=s)
        value = math.nan if s % 9 == 0 else float(s % 13)
        recs.append(TrialRecord(a, count(a), {"entropy": value, "rho": s / 40}))
    store.add_trials(run, recs)
    store.set_run_status(run, "finished")
    return store


@pytest.fixture
def client(db_url: str, hybrid: Space) -> Iterator[TestClient]:
    filled(db_url, hybrid)
    app = create_app(ServiceSettings(db=db_url, token=TOKEN))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_reads_answer_what_the_cli_answers(client: TestClient) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    assert client.get("/api/v1/health").json()["schema"] == store.head_revision()
    runs = client.get("/api/v1/runs").json()
    assert [r["id"] for r in runs] == [1] and runs[0]["trials"] == 40
    assert runs[0]["progress"] is None or runs[0]["progress"] >= 0
    run = client.get("/api/v1/runs/1").json()
    assert run["metrics"] == ["entropy", "rho"] and run["settings"]["objectives"] == [
        "entropy:max"
    ]
    assert run["devices"] == {}  # no score of this run has a device choice
    got = client.get("/api/v1/runs/1/pareto?objectives=macs:min,entropy:max").json()
    want = queries.front(store, run=1, objectives="macs:min,entropy:max")
    assert [r["digest"] for r in got["front"]] == [r["digest"] for r in want.rows]
    assert got["columns"] == want.columns and "MAC" in got["flop_convention"]
    across = client.get("/api/v1/pareto?all=true&objectives=macs:min,entropy:max").json()
    assert [r["digest"] for r in across["front"]] == [r["digest"] for r in want.rows]
    zoo_rows = client.get("/api/v1/runs/1/pareto?with_zoo=true").json()["front"]
    assert {r["zoo"] for r in zoo_rows if r.get("zoo")} <= set(zoo.names())


def test_trials_page_sorts_filters_and_bounds(client: TestClient) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    page = client.get("/api/v1/runs/1/trials?order=entropy&descending=true&limit=7").json()
    assert page["total"] == 40 and len(page["trials"]) == 7
    values = [r["entropy"] for r in page["trials"]]
    assert values == sorted(values, reverse=True)  # NaN (null) last, none in the top 7
    last = client.get("/api/v1/runs/1/trials?order=entropy&offset=35&limit=10").json()
    assert [r["entropy"] for r in last["trials"]][-1] is None  # NaN is null in JSON
    where = client.get("/api/v1/runs/1/trials", params={"where": "entropy >= 6"}).json()
    want = store.results(1, metrics=["entropy"], where=None)
    assert where["total"] == sum(1 for r in want if r["entropy"] >= 6)
    for bad, message in (
        ("where=nope<1", "where: unknown metric 'nope'"),
        ("where=__import__('os')", "where:"),
        ("order=nope", "order 'nope'"),
        ("limit=0", "limit:"),
        ("limit=1001", "limit:"),
        ("offset=-1", "offset:"),
    ):
        r = client.get(f"/api/v1/runs/1/trials?{bad}")
        assert r.status_code == 400 and message in r.json()["error"], (bad, r.text)
        assert "\n" not in r.json()["error"] and "Traceback" not in r.text


def test_architecture_export_and_count(client: TestClient) -> None:
    front = client.get("/api/v1/runs/1/pareto").json()["front"]
    digest = front[0]["digest"]
    doc = client.get(f"/api/v1/architectures/{digest[:10]}").json()
    assert doc["digest"] == digest and doc["trials"][0]["run"] == 1
    assert sum(b["macs"] for b in doc["blocks"]) == doc["cost"]["macs"]
    assert all(len(b["in_shape"]) == 3 for b in doc["blocks"])
    source = client.get(f"/api/v1/architectures/{digest}/export?format=py")
    assert source.status_code == 200 and "import torch" in source.text
    assert "archsearch" not in source.text.split('"""', 2)[-1].split("import torch")[0]
    assert client.get(f"/api/v1/architectures/{digest}/export?format=json").json()["stem"]
    bad = client.get(f"/api/v1/architectures/{digest}/export?format=exe")
    assert (
        bad.status_code == 400
        and "choose py, yaml, json, torchscript, onnx" in bad.json()["error"]
    )
    convnext = zoo.get("convnext_t")
    total = client.post("/api/v1/count", json=convnext.to_dict()).json()["total"]
    assert total["params"] == count(convnext).params and total["gflops"] == pytest.approx(
        4.46, abs=0.01
    )
    as_text = client.post("/api/v1/count", json=convnext.to_yaml()).json()["total"]
    assert as_text["macs"] == count(convnext).macs
    for text in ("not json", "[" * 100_000 + "]" * 100_000):
        bad = client.post(
            "/api/v1/count", content=text, headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400 and "\n" not in bad.json()["error"]
    broken = client.post("/api/v1/count", json={"stem": {"type": "nope"}})
    assert broken.status_code == 400 and "\n" not in broken.json()["error"]


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/v1/runs/99", 404, "there is no run 99"),
        ("/api/v1/runs/99999999999999999999", 404, "there is no run"),
        ("/api/v1/architectures/abcdef0123", 404, "no architecture"),
        ("/api/v1/architectures/xyz", 400, "6 hex"),
        ("/api/v1/spaces/..%2F..%2Fetc%2Fpasswd", 404, "Not Found"),
        ("/api/v1/spaces/tests%2Ffixtures%2Ftiny_space.yaml", 404, "Not Found"),
        ("/api/v1/spaces/tiny_space.yaml", 404, "choose one of"),
        ("/api/v1/runs/1/pareto?objectives=nope:min", 400, "unknown metric 'nope'"),
        ("/api/v1/pareto?runs=1,7", 400, "there is no run 7"),
        ("/api/v1/pareto", 400, "choose the runs"),
        ("/api/v1/nothing", 404, "Not Found"),
        ("/api/v1/runs/abc", 400, "run_id: Input should be a valid integer"),
        ("/api/v1/latency/unknown", 404, "device 'unknown': no latency table"),
    ],
)
def test_errors_are_one_json_line(
    client: TestClient, path: str, status: int, message: str
) -> None:
    r = client.get(path)
    assert r.status_code == status, r.text
    assert message in r.json()["error"] and "\n" not in r.json()["error"]


def test_writes_need_the_token(client: TestClient) -> None:
    body = {"space": "hybrid", "score": "entropy", "trials": 5}
    assert client.post("/api/v1/runs", json=body).status_code == 401
    wrong = client.post("/api/v1/runs", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "token" in wrong.json()["error"]
    assert client.delete("/api/v1/runs/1").status_code == 401
    assert client.post("/api/v1/runs/1/cancel").status_code == 401
    made = client.post("/api/v1/runs", json=body, headers=AUTH)
    assert made.status_code == 201 and made.json()["status"] == "queued"
    store = client.app.state.store  # type: ignore[attr-defined]
    run_id = made.json()["id"]
    assert store.get_run(run_id).owner == QUEUE
    assert store.take_queued(QUEUE, "w1") == run_id and store.take_queued(QUEUE, "w2") is None


def test_no_token_means_no_writes(sqlite_url: str, hybrid: Space) -> None:
    filled(sqlite_url, hybrid)
    with TestClient(create_app(ServiceSettings(db=sqlite_url))) as c:
        r = c.post("/api/v1/runs", json={"space": "hybrid"}, headers=AUTH)
        assert r.status_code == 403 and "--token" in r.json()["error"]
        assert c.get("/api/v1/runs").status_code == 200


def test_reads_off_loopback_need_the_token_unless_public(sqlite_url: str, hybrid: Space) -> None:
    filled(sqlite_url, hybrid)
    closed = create_app(ServiceSettings(db=sqlite_url, host="0.0.0.0", token=TOKEN))
    with TestClient(closed) as c:
        assert c.get("/api/v1/runs").status_code == 401
        assert c.get("/api/v1/runs", headers=AUTH).status_code == 200
    public = create_app(
        ServiceSettings(db=sqlite_url, host="0.0.0.0", token=TOKEN, public_read=True)
    )
    with TestClient(public) as c:
        assert c.get("/api/v1/runs").status_code == 200
        assert c.post("/api/v1/runs", json={"space": "hybrid"}).status_code == 401


def test_submitted_settings_are_checked_like_the_cli(client: TestClient, tmp_path: Path) -> None:
    for body, message in (
        ({"space": "hybrid", "trials": 0}, "trials: 0 is out of range"),
        ({"space": "/etc/passwd"}, "built-in spaces only"),
        ({"space": "hybrid", "data": "/etc/passwd", "score": "train"}, "reads no files"),
        ({"spaec": "hybrid"}, "spaec: Extra inputs are not permitted"),
        ({"space": "hybrid", "budget": "1 potato"}, "budget"),
        ({"space": "hybrid", "score": "nope"}, "nope"),
    ):
        r = client.post("/api/v1/runs", json=body, headers=AUTH)
        assert r.status_code == 400, (body, r.text)
        assert message in r.json()["error"] and "\n" not in r.json()["error"], (body, r.text)
    assert [r["id"] for r in client.get("/api/v1/runs").json()] == [1]  # nothing stored


def data_root_app(sqlite_url: str, hybrid: Space, root: Path) -> Any:
    """The service over a filled store, its files confined to the new folder ``root``."""
    filled(sqlite_url, hybrid)
    root.mkdir()
    return create_app(ServiceSettings(db=sqlite_url, token=TOKEN, data_root=str(root)))


def test_data_files_only_under_the_data_root(
    sqlite_url: str, hybrid: Space, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    app = data_root_app(sqlite_url, hybrid, root)
    with TestClient(app) as c:
        body = {"space": "hybrid", "score": "train", "data": "../../etc"}
        r = c.post("/api/v1/runs", json=body, headers=AUTH)
        assert r.status_code == 400 and "under the service's data root" in r.json()["error"]


def test_cancel_resume_delete(client: TestClient) -> None:
    made = client.post(
        "/api/v1/runs", json={"space": "hybrid", "score": "entropy", "trials": 5}, headers=AUTH
    ).json()
    rid = made["id"]
    assert client.post(f"/api/v1/runs/{rid}/cancel", headers=AUTH).json()["status"] == (
        "interrupted"
    )
    again = client.post(f"/api/v1/runs/{rid}/cancel", headers=AUTH)
    assert again.status_code == 409 and "only a queued or running run" in again.json()["error"]
    assert client.post(f"/api/v1/runs/{rid}/resume", headers=AUTH).json()["status"] == "queued"
    assert client.post("/api/v1/runs/1/resume", headers=AUTH).status_code == 409  # finished
    gone = client.delete(f"/api/v1/runs/{rid}", headers=AUTH).json()
    assert gone["deleted"] == rid
    assert client.get(f"/api/v1/runs/{rid}").status_code == 404


def test_bodies_are_bounded_and_internal_errors_hide_their_details(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = b"[" + b"1," * 600_000 + b"1]"
    r = client.post("/api/v1/count", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "1,048,576 bytes" in r.json()["error"]

    def chunks() -> Iterator[bytes]:
        for _ in range(2000):
            yield b" " * 1024

    r = client.post(
        "/api/v1/count", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    store = client.app.state.store  # type: ignore[attr-defined]

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("secret /home/user/path")

    monkeypatch.setattr(store, "list_runs", boom)
    r = client.get("/api/v1/runs")
    assert r.status_code == 500 and r.json() == {
        "error": "internal error (RuntimeError); see the service's log"
    }


def test_a_remembered_front_follows_new_trials(client: TestClient, hybrid: Space) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    path = "/api/v1/runs/1/pareto?objectives=macs:min,entropy:max"
    before = client.get(path).json()["front"]
    assert client.get(path).json()["front"] == before  # remembered
    best = max(r["entropy"] for r in before)
    small = min(r["macs"] for r in before)
    arch = next(
        a for a in (hybrid.sample(seed=1000 + s) for s in range(200)) if count(a).macs < small
    )
    store.add_trials(1, [TrialRecord(arch, count(arch), {"entropy": best + 1, "rho": 0.1})])
    after = client.get(path).json()["front"]
    assert [r["digest"] for r in after] == [arch.digest]  # it dominates every other trial


def test_one_thread_computes_a_missing_front_while_the_others_wait() -> None:
    import threading
    import time

    from archsearch.service.api import _Remembered

    remembered, calls = _Remembered(2), []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 42

    threads = [
        threading.Thread(target=lambda: remembered.get_or_compute("k", slow)) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and remembered.get_or_compute("k", slow) == 42
    for k in ("a", "b", "c"):
        remembered.get_or_compute(k, lambda: 0)
    assert list(remembered.items) == ["b", "c"]  # least recently used first out


@pytest.mark.slow
def test_torchscript_and_onnx_exports_load_elsewhere(sqlite_url: str, hybrid: Space) -> None:
    import io

    import numpy as np
    import onnxruntime as ort
    import torch

    store = filled(sqlite_url, hybrid)
    digest = store.pareto(1, [("macs", "min"), ("entropy", "max")])[0]["digest"]
    with TestClient(create_app(ServiceSettings(db=sqlite_url))) as c:
        scripted = c.get(f"/api/v1/architectures/{digest}/export?format=torchscript")
        assert scripted.status_code == 200, scripted.text
        assert scripted.headers["content-disposition"].endswith(f'{digest[:12]}.pt"')
        module = torch.jit.load(io.BytesIO(scripted.content))
        x = torch.randn(1, *hybrid.input_shape)
        onnx = c.get(f"/api/v1/architectures/{digest}/export?format=onnx")
        assert onnx.status_code == 200, onnx.text
    session = ort.InferenceSession(onnx.content)
    (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(y, module(x).detach().numpy(), atol=1e-4)


@pytest.mark.slow
def test_architecture_page_predicts_latency_per_device(sqlite_url: str, hybrid: Space) -> None:
    from archsearch.cost.devices import DEVICES
    from archsearch.profiling import load_model
    from tests.service.conftest import archsearch

    tiny = str(Path(__file__).parents[1] / "fixtures" / "tiny_space.yaml")
    done = archsearch("latency", "profile", "--space", tiny, "--db", sqlite_url)
    assert done.returncode == 0, done.stderr
    store = filled(sqlite_url, hybrid)
    small = archsearch_space(tiny).sample(seed=0)
    run = store.create_run(config(hybrid))
    store.add_trials(run, [TrialRecord(small, count(small), {"entropy": 1.0})])
    want = load_model(store, DEVICES.create("cpu")).predict(small)
    with TestClient(create_app(ServiceSettings(db=sqlite_url))) as c:
        got = c.get(f"/api/v1/architectures/{small.digest}").json()["latency_predictions"]
        assert [p["device_name"] for p in got] == ["cpu"]
        assert got[0]["predicted_ms"] == pytest.approx(want)
        assert len(got[0]["block_ms"]) == len(small.layers)
        assert sum(got[0]["block_ms"]) == pytest.approx(want)
        other = store.results(1)[0]["digest"]  # a hybrid network: not in the tiny table
        got = c.get(f"/api/v1/architectures/{other}").json()["latency_predictions"]
        assert got[0]["predicted_ms"] is None


def archsearch_space(path: str) -> Space:
    from archsearch.spaces import load_space

    return load_space(path)


def test_files_of_a_submitted_run_resolve_under_the_data_root(
    sqlite_url: str, hybrid: Space, tmp_path: Path
) -> None:
    from tests.evaluators.test_training import easy_task

    root = tmp_path / "data"
    app = data_root_app(sqlite_url, hybrid, root)
    easy_task(root / "easy.npz")
    with TestClient(app) as c:
        seeded = c.post(  # a zoo network names no file
            "/api/v1/runs",
            json={"space": "hybrid", "score": "entropy", "init": "zoo:efficientformer_l1"},
            headers=AUTH,
        )
        assert seeded.status_code == 201, seeded.text
        trains = c.post(
            "/api/v1/runs",
            json={"space": "hybrid-small", "score": "train", "data": "npz:easy.npz", "trials": 2},
            headers=AUTH,
        )
        assert trains.status_code == 201, trains.text
        stored = trains.json()["settings"]["evaluators"]["train"]["data"]
        assert stored == f"npz:{root / 'easy.npz'}"
        sneaky = c.post(
            "/api/v1/runs",
            json={"space": "hybrid", "init": "zoo:convnext_t,/etc/passwd"},
            headers=AUTH,
        )
        assert (
            sneaky.status_code == 400 and "under the service's data root" in sneaky.json()["error"]
        )
