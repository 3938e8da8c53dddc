"""`archsearch plot pareto|history|latency|compare` on a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import invoke


@pytest.fixture
def two_runs(sqlite_url: str) -> str:
    for seed, strategy in ((0, "evolution"), (1, "random")):
        code, _, err = invoke(
            "run",
            "--space",
            "hybrid",
            "--budget",
            "1GFLOP",
            "--score",
            "entropy",
            "--trials",
            "80",
            "--strategy",
            strategy,
            "--seed",
            str(seed),
            db=sqlite_url,
        )
        assert code == 0, err
    return sqlite_url


def test_each_plot_writes_its_file(two_runs: str, tmp_path: Path) -> None:
    for args, said in (
        (["pareto", "--run", "1", "--with-zoo", "--color", "params"], "(80 trials, a front of"),
        (["history", "--run", "2", "--time"], "(80 trials)"),
        (["compare", "--run", "1", "--run", "2"], "(fronts of"),
    ):
        for suffix in (".png", ".html"):
            out = tmp_path / f"{args[0]}{suffix}"
            code, _, err = invoke("plot", *args, "--out", str(out), db=two_runs)
            assert code == 0, err
            assert f"plot: {out} {said}" in err
            assert out.stat().st_size > 1000


def test_latency_plots_stored_measurements(sqlite_url: str, tmp_path: Path) -> None:
    from archsearch import count, zoo
    from archsearch.cost.devices import create_device
    from archsearch.db import Store, TrialRecord
    from archsearch.profiling import device_info

    store, info = Store(sqlite_url), device_info(create_device("cpu"))
    timing = {"p10_ms": 0.9, "p90_ms": 1.1, "iqr_ms": 0.1, "repeats": 5, "warmup": 1}
    timing |= {"rel_median": 1.0, "ref_ms": 1.0}
    for name, measured, predicted in (("resnet50", 10.0, 10.5), ("deit_ti", 4.0, 5.0)):
        arch = zoo.get(name)
        store.add_network_latency(
            info,
            TrialRecord(arch, count(arch), {}),
            {**timing, "median_ms": measured, "mean_ms": measured},
            purpose="check",
            block_sum=None,
            predicted_ms=predicted,
        )
    out = tmp_path / "l.svg"
    code, _, err = invoke("plot", "latency", "--out", str(out), db=sqlite_url)
    assert code == 0, err
    assert f"plot: {out} (2 measurements)" in err
    assert b"2 networks, 50% within +-10%" in out.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pareto", "--run", "1", "--out", "x.pdf"], "--out=x.pdf: a plot is written as"),
        (["pareto", "--run", "1", "--objectives", "macs:min"], "a plot needs two objectives"),
        (["pareto", "--run", "7"], "there is no run 7"),
        (["pareto", "--run", "1", "--color", "nope"], "metric 'nope' is not stored for run 1"),
        (["compare", "--run", "1"], "compare needs two runs or more"),
        (["latency", "--device", "onnxruntime"], "--device=onnxruntime: no whole-network"),
        (["history", "--run", "1", "--metric", "nope:max"], "nope"),
        (["history", "--run", "1", "--metric", ""], "--metric= is empty"),
        (["pareto", "--run", "1", "--objectives", " "], "--objectives= is empty"),
    ],
)
def test_bad_input_is_one_line_with_exit_2(
    two_runs: str, args: list[str], message: str, tmp_path: Path
) -> None:
    code, _, err = invoke("plot", *args, db=two_runs)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1, err
