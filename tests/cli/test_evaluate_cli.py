"""Scores from the CLI: `evaluators`, `evaluate`, and `run --score` with proxies and training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archsearch.data import absolute_ref
from archsearch.db import Store
from tests.cli.test_cli import invoke
from tests.conftest import FIXTURES
from tests.evaluators.test_training import easy_task

TINY = str(FIXTURES / "tiny_space.yaml")


@pytest.fixture
def easy(tmp_path: Path) -> str:
    return easy_task(tmp_path / "easy.npz")


def test_evaluators_lists_every_score_with_direction_and_cost() -> None:
    code, out, _ = invoke("evaluators", "-f", "json")
    assert code == 0
    rows = {r["metric"]: r for r in json.loads(out)}
    for name in ("naswot", "synflow", "grad_norm", "snip", "jacob_cov", "zen", "entropy"):
        assert rows[name]["direction"] == "max" and rows[name]["cost"] == "cheap"
    assert rows["accuracy"]["score"] == "train" and rows["accuracy"]["cost"] == "expensive"
    assert rows["params"]["cost"] == rows["macs"]["cost"] == "analytic"


def test_run_with_a_proxy_optimises_it(sqlite_url: str) -> None:
    code, out, err = invoke(
        "run", "--space", TINY, "--score", "naswot", "--proxy-input", "3x16x16",
        "--proxy-batch", "8", "--trials", "6", "--batch-size", "3", "-f", "json", db=sqlite_url,
    )  # fmt: skip
    assert code == 0, err
    store = Store(sqlite_url)
    run = store.list_runs()[0]
    assert run.config.objectives == ["naswot:max"]
    assert run.config.evaluators["naswot"]["input"] == "3x16x16"
    assert all("naswot" in t.values for t in store.trials(run.id))


@pytest.mark.slow
def test_run_with_train_on_a_dataset_then_resume(sqlite_url: str, easy: str) -> None:
    args = ["--space", TINY, "--score", "train,synflow", "--data", easy, "--steps", "2"]
    code, out, err = invoke("run", *args, "-S", "batch_size=16", "--trials", "2", db=sqlite_url)
    assert code == 0, err
    store = Store(sqlite_url)
    run = store.list_runs()[0]
    assert run.config.objectives == ["accuracy:max"]  # the first score's first metric
    assert run.config.evaluators["train"]["steps"] == 2
    # --data reaches the proxies too, stored with an absolute path for --resume from anywhere
    assert run.config.evaluators["synflow"]["data"] == absolute_ref(easy)
    trials = store.trials(run.id)
    assert len(trials) == 2
    for t in trials:
        assert 0 <= t.values["accuracy"] <= 100 and t.values["epochs"] > 0
    code, _, err = invoke("run", "--resume", str(run.id), "--trials", "3", db=sqlite_url)
    assert code == 0, err
    assert len(store.trials(run.id)) == 3
    # the device the train score ran on is stored with every trial (synflow has no choice)
    from archsearch.evaluators.training import describe_device, resolve_device

    here = describe_device(resolve_device("auto"))
    assert {t.device for t in store.trials(run.id)} == {here}
    assert store.run_devices(run.id) == {here: 3}


@pytest.mark.slow
def test_evaluate_scores_specs_and_stores_them(sqlite_url: str, easy: str) -> None:
    spec = str(FIXTURES / "deepmad_r50.yaml")
    code, out, err = invoke(
        "evaluate", spec, "zoo:tinyvit_5m", "--score", "params,entropy,zen",
        "--proxy-input", "3x32x32", "--proxy-batch", "4", "-f", "json", db=sqlite_url,
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 2 and rows[0]["params"] > 25e6
    assert all(isinstance(r["zen"], float) for r in rows)
    store = Store(sqlite_url)
    run = store.list_runs()[0]
    assert run.config.strategy == "evaluate" and run.config.objectives == ["params:min"]
    assert len(store.trials(run.id)) == 2
    digest = rows[0]["digest"]
    code, out, err = invoke(
        "evaluate", digest, "--score", "train", "--data", easy, "--steps", "1", "-f", "json",
        db=sqlite_url,
    )  # fmt: skip
    assert code == 0, err
    assert 0 <= json.loads(out)[0]["accuracy"] <= 100  # built for 1x8x8 and 2 classes
    code, out, err = invoke(
        "evaluate", rows[1]["digest"], "--score", "zen", "--proxy-input", "3x1x1", "-f", "json",
        db=sqlite_url,
    )  # fmt: skip
    # A network that cannot take the input fails its row with the reason; the command goes on.
    assert code == 0, err
    assert "too small" in json.loads(out)[0]["error"]
    assert [t.state for t in store.trials(store.list_runs()[0].id)] == ["failed"]
    code, _, err = invoke("run", "--resume", str(run.id), db=sqlite_url)
    assert code == 2 and "records `archsearch evaluate` scores" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--space", TINY, "--epochs", "2"], "--epochs: no chosen score takes 'epochs'"),
        (["run", "--space", TINY, "--score", "train"], "--data: the train score needs a dataset"),
        (
            ["run", "--space", TINY, "--score", "train", "--data", "idx:/no/such"],
            "--data idx:/no/such: /no/such does not exist",
        ),
        (["run", "--space", TINY, "--score", "naswot", "--proxy-input", "3x"], "--proxy-input"),
        (["run", "--space", TINY, "--score", "nasowt"], "unknown evaluator 'nasowt'"),
        (["run", "--space", TINY, "--score", "zen", "-S", "lr=1"], "-S lr: no chosen score"),
        (["evaluate", "zoo:nope", "--score", "zen"], "zoo"),
    ],
)
def test_score_user_errors_are_one_line(sqlite_url: str, args: list[str], message: str) -> None:
    code, _, err = invoke(*args, db=sqlite_url)
    assert code == 2 and message in err, err
    assert err.count("\n") == 1
    assert Store(sqlite_url).list_runs() == []
