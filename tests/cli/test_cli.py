"""The typer CLI, in process with CliRunner, plus one smoke test of the installed command."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from archsearch import zoo
from archsearch.cli import app
from archsearch.cost import count
from archsearch.db import Store

runner = CliRunner()


def invoke(*args: str, db: str | None = None) -> tuple[int, str, str]:
    argv = [*args, *(["--db", db] if db else [])]
    r = runner.invoke(app, argv, catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def done_run(sqlite_url: str) -> Iterator[tuple[str, int]]:
    code, out, err = invoke(
        "run",
        "--score",
        "entropy",
        "--space",
        "hybrid",
        "--budget",
        "1GFLOP",
        "--trials",
        "120",
        "--seed",
        "2",
        db=sqlite_url,
    )
    assert code == 0, err
    (run,) = Store(sqlite_url).list_runs()
    yield sqlite_url, run.id


def test_run_prints_front_and_run_id(done_run: tuple[str, int]) -> None:
    db, run = done_run
    code, out, _ = invoke(
        "run",
        "--score",
        "entropy",
        "--space",
        "hybrid",
        "--budget",
        "1GFLOP",
        "--trials",
        "40",
        db=db,
    )
    assert code == 0
    assert "Pareto front of run 2" in out and "GFLOPs" in out
    assert "1 FLOP = 1 multiply-accumulate" in out
    assert "run 2: finished" in out and "archsearch pareto --run 2" in out


def test_run_json_output(sqlite_url: str) -> None:
    code, out, _ = invoke(
        "run",
        "--score",
        "entropy",
        "--space",
        "hybrid",
        "--budget",
        "800MFLOP,8M",
        "--trials",
        "50",
        "--strategy",
        "random",
        "--objectives",
        "macs:min,entropy:max",
        "-f",
        "json",
        db=sqlite_url,
    )
    assert code == 0
    doc = json.loads(out)  # one document: the run's id, outcome and front, full digests
    assert doc["run"] == 1 and doc["status"] == "finished" and doc["trials"] == 50
    rows = doc["front"]
    assert rows and all(r["macs"] <= 800_000_000 and r["params"] <= 8_000_000 for r in rows)
    assert all(len(r["digest"]) == 64 for r in rows)
    code, out, _ = invoke("run", "--resume", "1", "--trials", "60", "-f", "csv", db=sqlite_url)
    assert code == 0
    header, *lines = out.splitlines()
    assert header.startswith("run,trial,") and lines and all(x.startswith("1,") for x in lines)


def test_runs_lists_runs(done_run: tuple[str, int]) -> None:
    db, run = done_run
    code, out, _ = invoke("runs", "-f", "json", db=db)
    (row,) = json.loads(out)
    assert row["id"] == run and row["trials"] == 120 and row["status"] == "finished"
    assert row["budget"] == "MACs <= 1GFLOP"
    code, out, _ = invoke("runs", db=db)
    assert code == 0 and "finished" in out


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_pareto_formats(done_run: tuple[str, int], fmt: str) -> None:
    db, run = done_run
    code, out, _ = invoke(
        "pareto", "--run", str(run), "--objectives", "macs:min,entropy:max", "-f", fmt, db=db
    )
    assert code == 0
    if fmt == "json":
        rows = json.loads(out)
        assert {"trial", "macs", "entropy", "params", "rho", "digest"} <= set(rows[0])
        macs = [r["macs"] for r in rows]
        assert macs == sorted(macs)
        ent = [r["entropy"] for r in rows]
        assert ent == sorted(ent)  # a 2-D front: more MACs buys more entropy
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert rows and len(rows[0]["digest"]) == 64
    else:
        assert "Pareto front" in out and "GFLOPs" in out


def test_pareto_where(done_run: tuple[str, int]) -> None:
    db, run = done_run
    code, out, _ = invoke(
        "pareto", "--run", str(run), "--where", "params < 6M and rho < 0.4", "-f", "json", db=db
    )
    assert code == 0
    assert all(r["params"] < 6e6 and r["rho"] < 0.4 for r in json.loads(out))


def test_show(done_run: tuple[str, int]) -> None:
    db, run = done_run
    _, out, _ = invoke("pareto", "--run", str(run), "-f", "json", "--limit", "1", db=db)
    digest = json.loads(out)[0]["digest"]
    code, out, _ = invoke("show", digest[:10], db=db)
    doc = yaml.safe_load(out)
    assert code == 0 and doc["digest"] == digest
    assert doc["cost"]["gflops"] == round(doc["cost"]["macs"] / 1e9, 4)
    assert doc["trials"][0]["run"] == run and "entropy" in doc["trials"][0]["scores"]
    code, out, _ = invoke("show", digest, "-f", "json", db=db)
    assert json.loads(out)["spec"]["num_classes"] == 1000


def test_count_a_spec_file() -> None:
    from tests.conftest import FIXTURES

    code, out, _ = invoke("count", str(FIXTURES / "deepmad_r50.yaml"), "-f", "json")
    rows = json.loads(out)
    assert code == 0 and rows[0]["block"] == "stem" and rows[-1]["block"] == "total"
    assert sum(r["params"] for r in rows[:-1]) == rows[-1]["params"]
    assert round(rows[-1]["entropy"], 1) == 48919.3


def test_count_a_network_of_two_streams() -> None:
    from tests.conftest import FIXTURES

    code, out, _ = invoke("count", str(FIXTURES / "tiny_streams.yaml"), "-f", "json")
    rows = json.loads(out)
    assert code == 0 and [r["block"] for r in rows[-3:]] == ["head[0]", "head[1]", "total"]
    assert sum(r["params"] for r in rows[:-1]) == rows[-1]["params"] == 57_644
    assert rows[-1]["entropy"] is None  # DeepMAD's entropy is that of one chain of layers


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ('{"stem": 3', "architecture JSON is not valid JSON (line 1, column 11"),
        (
            '{"stem": {"type": "conv_stem", "out_channels": 32}, "stages": [{"blocks": [{"type": '
            '"mhsa", "out_channels": 32, "params": {"heads": 5}}]}], "head": {"type": "head"}}',
            "stages[0].blocks[0] (mhsa): heads=5 does not divide out_channels=32",
        ),
        (
            '{"stem": {"type": "stemm", "out_channels": 32}, "stages": [], "head": {}}',
            "unknown block type 'stemm'; choose one of",
        ),
        (  # two streams opened, then a plain stage
            '{"stem": {"type": "conv_stem", "out_channels": 8}, "stages": [{"branches": [{"blocks'
            '": [{"type": "convnext", "out_channels": 8}]}, {"blocks": [{"type": "convnext", "out'
            '_channels": 8}]}]}, {"blocks": [{"type": "convnext", "out_channels": 8}]}], "head": '
            '{"type": "head"}}',
            "stages[1]: the network carries 2 streams here (opened by stages[0]); a plain stage "
            "takes one",
        ),
        (
            '{"stem": {"type": "conv_stem", "out_channels": 8}, "stages": [{"branches": "many"}],'
            ' "head": {"type": "head"}}',
            "stages[0].branches: expected a list of 2 to 16 branches, got 'many'",
        ),
    ],
)
def test_bad_architecture_json_is_one_line(stdin: str, message: str) -> None:
    r = runner.invoke(app, ["count", "-"], input=stdin)
    assert r.exit_code == 2 and message in r.stderr and r.stderr.count("\n") == 1


def test_zoo_commands() -> None:
    code, out, _ = invoke("zoo", "list", "-f", "json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and sorted(rows) == zoo.names() and len(rows) >= 20
    assert all(r["params"] == r["reference_params"] for r in rows.values())
    assert rows["convnext_t"]["params"] == rows["convnext_t"]["reference_params"] == 28_589_128
    assert rows["efficientformer_l1"]["in_hybrid"] and not rows["resnet50"]["in_hybrid"]
    code, out, _ = invoke("zoo", "list")
    assert code == 0 and "1 FLOP = 1 multiply-accumulate" in " ".join(out.split())
    for fmt in ("yaml", "json"):
        code, out, _ = invoke("zoo", "show", "efficientformer_l1", "-f", fmt)
        doc = json.loads(out) if fmt == "json" else yaml.safe_load(out)
        assert code == 0 and doc["reference_params"] == doc["cost"]["params"] == 12_289_928
        assert doc["spec"]["head"]["params"]["distill"] is True
    code, _, err = invoke("zoo", "show", "vgg")
    assert code == 2 and "unknown zoo network 'vgg'" in err


def test_init_from_the_zoo(sqlite_url: str) -> None:
    from archsearch import zoo

    code, _, err = invoke(
        "run",
        "--score",
        "entropy",
        "--space",
        "hybrid",
        "--budget",
        "1.3GFLOP",
        "--trials",
        "40",
        "--init",
        "zoo:efficientformer_l1,zoo:tinyvit_5m",
        db=sqlite_url,
    )
    assert code == 0, err
    trials = Store(sqlite_url).trials(1)
    assert [t.digest for t in trials[:2]] == [
        zoo.get("efficientformer_l1").digest,
        zoo.get("tinyvit_5m").digest,
    ]
    code, _, err = invoke(
        "run",
        "--score",
        "entropy",
        "--space",
        "hybrid",
        "--budget",
        "1.2GFLOP",
        "--trials",
        "20",
        "--init",
        "zoo:efficientformer_l1",
        db=sqlite_url,
    )
    assert code == 0 and "--init zoo:efficientformer_l1 skipped: 1.29GFLOPs" in err
    code, _, err = invoke("run", "--space", "hybrid", "--init", "zoo:resnet50", db=sqlite_url)
    assert code == 2 and "--init zoo:resnet50: not a member of space 'hybrid': stem" in err
    assert err.count("\n") == 1


def test_pareto_with_zoo(done_run: tuple[str, int]) -> None:
    db, run = done_run
    code, out, _ = invoke(
        "pareto", "--run", str(run), "--with-zoo", "--where", "macs < 2G", "-f", "json", db=db
    )
    rows = json.loads(out)
    zoo_rows = [r for r in rows if r["zoo"]]
    # the zoo's networks of the run's input (224x224: not CrossViT's 240x240) under 2 GFLOPs
    # (1 FLOP = 1 MAC), the filter applied to them too
    under = {
        n
        for n in zoo.names()
        if count(zoo.get(n)).macs < 2e9 and zoo.get(n).input_shape == (3, 224, 224)
    }
    assert code == 0 and {r["zoo"] for r in zoo_rows} == under
    assert {"deit_ti", "tinyvit_5m", "mobilenetv3_large", "t2t_vit_7"} <= under
    assert all(r["entropy"] > 0 for r in zoo_rows)
    assert any(r["zoo"] is None for r in rows)
    macs = [r["macs"] for r in rows]
    assert macs == sorted(macs)


@pytest.mark.slow
def test_spaces_and_blocks() -> None:
    code, out, _ = invoke("spaces", "list", "-f", "json")
    assert code == 0 and [r["name"] for r in json.loads(out)] == [
        "convnet",
        "efficientformer",
        "hybrid",
        "hybrid-small",
        "mbconv",
        "nb201",
        "vit-resnas",
        "vit-resnas-small",
    ]
    code, out, _ = invoke("spaces", "show", "hybrid")
    doc = yaml.safe_load(out)
    assert [s["name"] for s in doc["stages"]] == ["s1", "s2", "s3", "s4"]
    assert doc["size"]["log10_feasible"] > 30
    code, out, _ = invoke("blocks", "-f", "json")
    assert {"convnext", "mbconv", "bottleneck", "pool", "mhsa", "sr_mhsa"} <= {
        r["type"] for r in json.loads(out)
    }


def test_db_commands(sqlite_url: str) -> None:
    head = Store(sqlite_url).head_revision()
    code, out, _ = invoke("db", "upgrade", db=sqlite_url)
    assert code == 0 and head in out
    code, out, _ = invoke("db", "current", db=sqlite_url)
    assert code == 0 and f"revision {head}" in out


def test_resume(sqlite_url: str) -> None:
    args = ("run", "--score", "entropy", "--space", "hybrid", "--budget", "1GFLOP", "--seed", "5")
    invoke(*args, "--trials", "100", db=sqlite_url)
    invoke(*args, "--trials", "40", db=sqlite_url)
    code, out, _ = invoke("run", "--resume", "2", "--trials", "100", db=sqlite_url)
    assert code == 0 and "100 trials stored (60 new)" in out
    store = Store(sqlite_url)
    assert [t.digest for t in store.trials(1)] == [t.digest for t in store.trials(2)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--space", "nope"],
            "unknown space 'nope'; choose one of: convnet, efficientformer, hybrid",
        ),
        (["run", "--space", "hybrid", "--rho", "-1"], "--rho: -1.0 must be a positive number"),
        (
            ["run", "--space", "convnet", "--strategy", "deepmad", "--budget", "1MFLOP"],
            "--budget/--constraint: infeasible: macs <= 1M: the smallest member",
        ),
        (
            ["run", "--space", "convnet", "--strategy", "deepmad", "--objectives", "macs:min"],
            "the deepmad strategy maximises DeepMAD's entropy",
        ),
        (
            ["run", "--space", "hybrid", "--budget", "1GFLOPZ"],
            "--budget: '1GFLOPZ' is not a budget; write e.g. 1GFLOP",
        ),
        (
            ["run", "--space", "hybrid", "--budget", "1MFLOP", "-O", "max_tries=200"],
            "no member of space 'hybrid' meets MACs <= 1MFLOP",
        ),
        (["run", "--space", "hybrid", "--strategy", "bayes"], "unknown strategy 'bayes'"),
        (["run", "--space", "hybrid", "--objectives", "acc:max"], "unknown metric 'acc'"),
        (["run", "--space", "hybrid", "-O", "population"], "--option: 'population' must look"),
        (["run"], "--space is required"),
        (["run", "--resume", "7"], "there is no run 7"),
        (["run", "--resume", "1", "--space", "hybrid"], "drop --space"),
        (["pareto", "--run", "3"], "there is no run 3"),
        (["show", "zzzzzzzz"], "give at least 6 hex characters"),
        (["spaces", "show", "missing.yaml"], "file 'missing.yaml' does not exist"),
    ],
)
def test_user_errors_are_one_line_exit_2(sqlite_url: str, args: list[str], message: str) -> None:
    code, out, err = invoke(*args, db=sqlite_url if args[0] not in ("spaces",) else None)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_yaml_space_is_file_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nstem:\n  types: {conv_stem: {}}\nstages: [\n")
    code, _, err = invoke("spaces", "show", str(path))
    assert code == 2 and f"{path}:" in err and "YAML syntax error" in err


def test_unreachable_database(tmp_path: Path) -> None:
    code, _, err = invoke("runs", db="postgresql://nobody@127.0.0.1:1/db")
    assert code == 2 and "cannot reach the database" in err
    code, _, err = invoke("runs", db="sqlite:////no/such/dir/x.db")
    assert code == 2 and "does not exist" in err


def test_errors_do_not_harm_stored_runs(done_run: tuple[str, int]) -> None:
    db, run = done_run
    before = [t.digest for t in Store(db).trials(run)]
    invoke("run", "--space", "hybrid", "--budget", "1MFLOP", "-O", "max_tries=100", db=db)
    invoke("pareto", "--run", str(run), "--where", "bogus > 1", db=db)
    assert [t.digest for t in Store(db).trials(run)] == before
    assert len(Store(db).list_runs()) == 1


def test_ctrl_c_keeps_trials_and_exits_130(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import archsearch.search.executors as search_mod

    original = search_mod._evaluate
    calls = {"n": 0, "evaluated": 0}

    def interrupt_on_fourth_chunk(search, archs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        calls["evaluated"] += len(archs)
        return original(search, archs)

    monkeypatch.setattr(search_mod, "_evaluate", interrupt_on_fourth_chunk)
    r = runner.invoke(
        app,
        ["run", "--score", "entropy", "--space", "hybrid", "--trials", "500", "--db", sqlite_url],
    )
    assert r.exit_code == 130
    assert "interrupted: finished trials are kept in run 1" in r.stderr
    assert "archsearch run --resume 1" in r.stderr
    info = Store(sqlite_url).get_run(1)
    # every candidate evaluated before the interruption is stored, mid-batch too
    assert info.status == "interrupted" and info.n_complete == calls["evaluated"] > 0


def test_help_states_the_flop_convention() -> None:
    r = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert "1 FLOP = 1 multiply-accumulate" in " ".join(r.stdout.split())


@pytest.mark.slow
def test_installed_command_smoke(tmp_path: Path) -> None:
    exe = shutil.which("archsearch", path=os.path.dirname(sys.executable)) or shutil.which(
        "archsearch"
    )
    assert exe, "the archsearch console script is not installed"
    env = {**os.environ, "ARCHSEARCH_DB": f"sqlite:///{tmp_path / 'a.db'}"}
    r = subprocess.run(
        [exe, "run", "--space", "hybrid", "--budget", "1GFLOP", "--trials", "64"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "run 1: finished" in r.stdout
    r = subprocess.run(
        [exe, "pareto", "--run", "9"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 2 and r.stderr.startswith("error: --run: there is no run 9")
    r = subprocess.run(
        [sys.executable, "-m", "archsearch", "--help"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and "run" in r.stdout


@pytest.mark.slow
def test_run_deepmad_prints_the_design_and_its_bounds(sqlite_url: str) -> None:
    code, out, err = invoke(
        "run", "--space", "hybrid", "--strategy", "deepmad", "--budget", "1GFLOP",
        "--rho", "0.6", "-O", "starts=1", "-O", "polish=200", db=sqlite_url,
    )  # fmt: skip
    assert code == 0, err
    assert "designed network" in out and "sensitivity" in out
    assert "deepmad: entropy" in out and "convex programs" in out
    (run,) = Store(sqlite_url).list_runs()
    assert run.config.strategy == "deepmad" and run.config.constraints == ["rho <= 0.6"]


def test_run_options_are_the_run_settings() -> None:
    """`archsearch run` declares an option for every run setting (the library's
    RunSettings), so that the CLI, sweep files and the service take the same settings."""
    import typer

    from archsearch.search.settings import RunSettings

    command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    options = {p.name for p in command.params}
    assert set(RunSettings.model_fields) <= options


HEAVY = (
    "numpy",
    "pydantic",
    "sqlalchemy",
    "alembic",
    "torch",
    "ray",
    "cvxpy",
    "optuna",
    "rich.progress",
    "networkx",
)


def test_help_imports_no_heavy_dependency() -> None:
    """`archsearch --help` (and the start of every command) imports the CLI alone: the store,
    numpy, pydantic, torch and the solvers' libraries load in the commands that use them
    (benchmarks/startup.py times it)."""
    code = (
        "import sys; sys.argv = ['archsearch', '--help']\n"
        "from archsearch.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_pareto_across_runs_names_the_run_per_row(sqlite_url: str) -> None:
    from archsearch import zoo

    for refs in (["zoo:resnet50", "zoo:deit_ti"], ["zoo:resnet50", "zoo:convnext_t"]):
        code, _, err = invoke("evaluate", *refs, "--score", "entropy", db=sqlite_url)
        assert code == 0, err
    objectives = ["--objectives", "params:min,entropy:max", "-f", "json"]
    fronts = []
    for flag in (["--runs", "1,2"], ["--all"], ["--space", "-"]):
        code, out, err = invoke("pareto", *flag, *objectives, db=sqlite_url)
        assert code == 0, err
        fronts.append(json.loads(out))
    assert fronts[0] == fronts[1] == fronts[2]
    # convnext_t (more parameters than resnet50, less entropy) is dominated; resnet50, in
    # both runs, is one row taken from the newer run
    assert [(r["digest"], r["run"], r["runs"]) for r in fronts[0]] == [
        (zoo.get("deit_ti").digest, 1, "1"),
        (zoo.get("resnet50").digest, 2, "1,2"),
    ]
    code, out, err = invoke(
        "pareto", "--runs", "1,2", "-f", "csv", "--where", "params < 10M", db=sqlite_url
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("run,trial,") and len(lines) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "pareto: choose the runs with one of --run, --runs, --sweep, --space, --all"),
        (["--run", "1", "--all"], "pareto: give only one of the runs with --run or --all"),
        (["--runs", "1,x"], "--runs=1,x: give run ids separated by commas"),
        (["--runs", "1,9"], "--runs=1,9: there is no run 9"),
        (["--space", "nope"], "--space=nope: no run searched it; the runs searched: -"),
        (["--sweep", "s"], "--sweep=s: no run belongs to it"),
        (["--all", "--where", "bogus > 1"], "--where: unknown metric 'bogus'"),
    ],
)
def test_pareto_run_selection_errors(sqlite_url: str, args: list[str], message: str) -> None:
    code, _, err = invoke("evaluate", "zoo:deit_ti", "--score", "entropy", db=sqlite_url)
    assert code == 0, err
    code, _, err = invoke("pareto", *args, db=sqlite_url)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
