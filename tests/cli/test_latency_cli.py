"""The latency commands and latency-aware runs, on a tiny space with short measurements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.db import Store
from tests.conftest import FIXTURES

runner = CliRunner()
TINY = str(FIXTURES / "tiny_space.yaml")
FAST = ["--warmup", "1", "--repeats", "3", "-D", "threads=1"]


def invoke(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def profiled(sqlite_url: str) -> str:
    code, out, err = invoke(
        "latency", "profile", "--space", TINY, *FAST, "--calibrate", "3", "--db", sqlite_url
    )
    assert code == 0, err
    assert (
        "78 entries measured, 0 already in the table" in out
        and "correction on 3 networks: global scale" in out
    )
    return sqlite_url


def test_devices() -> None:
    code, out, _ = invoke("devices", "-f", "json")
    rows = {r["device"]: r for r in json.loads(out)}
    assert code == 0 and rows["cpu"]["available"] and len(rows["cpu"]["key"]) == 16
    assert rows["cuda"]["available"] == torch.cuda.is_available()


def test_profile_is_idempotent(profiled: str) -> None:
    code, out, _ = invoke(
        "latency", "profile", "--space", TINY, *FAST, "--calibrate", "0", "--db", profiled
    )
    assert code == 0 and "0 entries measured, 78 already in the table" in out


def test_check_json_and_plot(profiled: str, tmp_path: Path) -> None:
    plot = tmp_path / "check.png"
    code, out, err = invoke(
        "latency",
        "check",
        "--space",
        TINY,
        "-D",
        "threads=1",
        "--n",
        "3",
        "-f",
        "json",
        "--plot",
        str(plot),
        "--db",
        profiled,
    )
    assert code == 0, err
    doc = json.loads(out)  # stdout carries the data alone; "plot: ..." goes to stderr
    assert doc["summary"]["n"] == 3 and len(doc["rows"]) == 3
    assert {"within_10pct", "mape", "spearman", "kendall", "session_ref_ms"} <= set(doc["summary"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_latency_constrained_run_and_pareto(profiled: str) -> None:
    code, _, err = invoke(
        "run",
        "--score",
        "entropy",
        "--space",
        TINY,
        "--latency",
        "50ms",
        "-D",
        "threads=1",
        "--trials",
        "30",
        "--measure-top",
        "2",
        "--db",
        profiled,
    )
    assert code == 0, err
    store = Store(profiled)
    trials = store.trials(1)
    assert len(trials) == 30 and all(t.values["latency@cpu"] <= 50 for t in trials)
    code, out, _ = invoke(
        "pareto",
        "--run",
        "1",
        "--objectives",
        "latency@cpu:min,entropy:max",
        "-f",
        "json",
        "--db",
        profiled,
    )
    rows = json.loads(out)
    assert code == 0 and rows and all("latency@cpu" in r for r in rows)
    code, out, _ = invoke(
        "pareto", "--run", "1", "--where", "latency@cpu < 50", "-f", "json", "--db", profiled
    )
    assert code == 0 and json.loads(out)
    digest = rows[0]["digest"]
    code, out, _ = invoke(
        "latency",
        "measure",
        digest[:10],
        "-D",
        "threads=1",
        "--repeats",
        "3",
        "-f",
        "json",
        "--db",
        profiled,
    )
    (row,) = json.loads(out)
    assert code == 0 and row["digest"] == digest and row["median_ms"] > 0
    assert row["predicted_ms"] is not None
    dev_key = next(k for k in [_key()] if k)
    purposes = [r["purpose"] for r in store.network_latencies(dev_key)]
    assert purposes.count("measure") == 3  # two from --measure-top, one from measure


def _key() -> str:
    from archsearch.cost.devices import create_device

    return create_device("cpu", threads=1).key


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--space", TINY, "--latency", "fast"], "--latency: 'fast' is not a latency"),
        (["run", "--space", TINY, "--latency", "40ms", "--device", "tpu"], "unknown device 'tpu'"),
        (["latency", "check", "--space", TINY, "--device", "npu"], "unknown device 'npu'"),
        (["latency", "profile", "--space", TINY, "-D", "threads"], "--device-option: 'threads'"),
        (
            [
                "run",
                "--space",
                TINY,
                "--latency",
                "0.001ms",
                "-D",
                "threads=1",
                "-O",
                "max_tries=30",
            ],
            "no member of space 'tiny' meets latency@cpu <= 0.001",
        ),
    ],
)
def test_bad_input_is_one_line(profiled: str, args: list[str], message: str) -> None:
    code, _, err = invoke(*args, "--db", profiled)
    assert code == 2 and message in err and err.count("\n") == 1


def test_cuda_without_gpu_lists_the_available_devices(sqlite_url: str) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    code, _, err = invoke(
        "latency", "profile", "--space", TINY, "--device", "cuda", "--db", sqlite_url
    )
    assert code == 2 and "--device cuda is not available here" in err and "available: cpu" in err
