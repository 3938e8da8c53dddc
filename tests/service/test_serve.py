"""``archsearch serve`` as a process: its workers run submitted runs, which stay ordinary runs."""

from __future__ import annotations

import socket
import urllib.error

import pytest

from tests.cli.test_hardening import one_line
from tests.service.conftest import Served, archsearch


@pytest.mark.slow
def test_submitted_runs_are_executed_cancelled_and_resumed(served: Served) -> None:
    quick = served.post("/api/v1/runs", {"space": "hybrid", "score": "entropy", "trials": 12})
    assert quick["status"] == "queued"
    finished = served.wait(
        "the run to finish",
        lambda: (r := served.get(f"/api/v1/runs/{quick['id']}"))["status"] == "finished" and r,
    )
    assert finished["trials"] == 12
    listed = archsearch("runs", "-f", "json", "--db", served.db)  # the CLI sees it
    assert listed.returncode == 0 and f'"id": {quick["id"]}' in listed.stdout
    # a long run: cancelled while it runs, its trials kept, then resumed
    long = served.post(
        "/api/v1/runs",
        {"space": "hybrid", "score": "entropy", "trials": 200_000, "batch_size": 16},
    )
    rid = long["id"]
    served.wait("trials", lambda: served.get(f"/api/v1/runs/{rid}")["trials"] >= 32)
    stopped = served.post(f"/api/v1/runs/{rid}/cancel")
    assert stopped["status"] == "interrupted"
    kept = served.wait("the worker to stop", lambda: _stopped_at(served, rid))
    assert served.get(f"/api/v1/runs/{rid}")["status"] == "interrupted"
    served.post(f"/api/v1/runs/{rid}/resume")
    served.wait("more trials", lambda: served.get(f"/api/v1/runs/{rid}")["trials"] > kept + 16)
    served.post(f"/api/v1/runs/{rid}/cancel")
    with pytest.raises(urllib.error.HTTPError) as e:
        served.post("/api/v1/runs", {"space": "hybrid"}, token="wrong-token-123")
    assert e.value.code == 401


def _stopped_at(served: Served, rid: int) -> int | None:
    """The run's trials once they stop growing for 2 s, else None."""
    import time

    before = served.get(f"/api/v1/runs/{rid}")["trials"]
    time.sleep(2.0)
    after = int(served.get(f"/api/v1/runs/{rid}")["trials"])
    return after if after == before else None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "--host 0.0.0.0: the service would be reachable"),
        (["--token", "short"], "--token: give at least 8 characters"),
        (["--workers", "65"], "--workers"),
        (["--data-root", "/nonexistent/folder"], "--data-root /nonexistent/folder: not a folder"),
        (["--host", "no.such.host.invalid"], "--host no.such.host.invalid"),
    ],
)
def test_serve_refuses_bad_options_in_one_line(
    sqlite_url: str, args: list[str], message: str
) -> None:
    done = archsearch("serve", "--db", sqlite_url, "--workers", "0", *args)
    assert one_line(done.returncode, done.stderr) and message in done.stderr, done.stderr


def test_a_taken_port_is_one_line(sqlite_url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        done = archsearch("serve", "--db", sqlite_url, "--workers", "0", "--port", str(port))
    assert one_line(done.returncode, done.stderr) and f"--port {port}" in done.stderr


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_submitted_runs_run_on_ray(small_run_db: str) -> None:
    from tests.service.conftest import start

    served = start(small_run_db, "--workers", "1", "--ray-address", "local")
    try:
        made = served.post("/api/v1/runs", {"space": "hybrid", "score": "entropy", "trials": 8})
        done = served.wait(
            "the run on Ray",
            lambda: (r := served.get(f"/api/v1/runs/{made['id']}"))["status"] == "finished" and r,
            timeout=180,
        )
        assert done["trials"] == 8
    finally:
        served.process.terminate()
        served.process.wait(60)


def test_an_unreachable_ray_is_one_line(sqlite_url: str) -> None:
    done = archsearch("serve", "--db", sqlite_url, "--port", "0", "--ray-address", "127.0.0.1:1")
    assert one_line(done.returncode, done.stderr) and "127.0.0.1:1" in done.stderr, done.stderr
