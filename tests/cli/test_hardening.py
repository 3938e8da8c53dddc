"""Hostile and malformed input, one test per class of defect: files that would run code, sizes
that would hang or exhaust memory, values that overflowed the databases, silently accepted
nonsense. Each answer is one line and exit code 2 (or a success where the input is valid),
quickly, with nothing stored harmed. The fuzz suite (tests/fuzz) draws many more."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import yaml

from archsearch.cli import app
from archsearch.db import Store
from archsearch.limits import MAX_DEPTH, MAX_SWEEP_POINTS
from tests.cli.test_cli import invoke, runner
from tests.conftest import FIXTURES
from tests.hostile import hostile_raw_pickle, hostile_yaml

TINY = FIXTURES / "tiny_space.yaml"


def one_line(code: int, err: str) -> bool:
    return code == 2 and len([x for x in err.splitlines() if x.startswith("error:")]) == 1


def space_doc(**stage: object) -> dict[str, object]:
    doc = yaml.safe_load(TINY.read_text())
    doc["stages"][0].update(stage)
    return doc


# -- files that would run code -----------------------------------------------------------------


def test_yaml_python_tags_never_run(tmp_path: Path, sqlite_url: str) -> None:
    marker = tmp_path / "pwned"
    evil = hostile_yaml(marker)
    for name, args in (
        ("space.yaml", ["spaces", "show"]),
        ("spec.yaml", ["count"]),
        ("sweep.yaml", ["sweep", "--check"]),
    ):
        (tmp_path / name).write_text(evil)
        code, _, err = invoke(*args[:1], str(tmp_path / name), *args[1:])
        assert one_line(code, err), err
    nested = TINY.read_text() + f"description: {evil}"
    (tmp_path / "nested.yaml").write_text(nested)
    code, _, err = invoke("spaces", "show", str(tmp_path / "nested.yaml"))
    assert one_line(code, err) and "python/object" in err
    code, _, err = invoke(
        "run", "--space", str(TINY), "--score", "entropy", "--trials", "2",
        "-O", f'population={evil.strip()}', db=sqlite_url,
    )  # fmt: skip
    assert one_line(code, err), err
    assert not marker.exists()


def test_npz_with_pickled_objects_is_refused(tmp_path: Path, sqlite_url: str) -> None:
    pickle_file, marker = hostile_raw_pickle(tmp_path)
    x = np.empty(4, dtype=object)
    x[:] = [pickle_file.read_bytes()] * 4  # object arrays are stored as pickles
    np.savez(tmp_path / "evil.npz", x=x, y=np.zeros(4, dtype=np.int64))
    code, _, err = invoke(
        "run", "--space", str(TINY), "--score", "train", "--data", f"npz:{tmp_path / 'evil.npz'}",
        "--trials", "1", db=sqlite_url,
    )  # fmt: skip
    assert one_line(code, err), err
    assert not marker.exists()


# -- sizes that hung or ate memory ------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ({"depth": {"min": 1, "max": 50_000_000}}, "less than or equal to 1000"),
        ({"depth": list(range(1, 200_000))}, "at most 1000"),
        ({"width": list(range(1, 200_001))}, "at most 10000"),
        ({"width": {"min": 1, "max": 100_000_000_000}}, "less than or equal to 1000000"),
        ({"width": {"min": 8, "max": 80_016, "step": 8}}, "at most 10000 values"),
        ({"width": [16, 100_000]}, "at most 65,536 channels"),
        (
            {
                "types": {
                    "mbconv": {
                        "kernel": [1, 3, 5, 7, 9, 11],
                        "hidden": {"min": 1, "max": 10_000},
                        "final_act": [True, False],
                    }
                }
            },
            "120,000 parameter combinations",
        ),
    ],
)
@pytest.mark.slow
def test_space_sizes_are_bounded_while_parsing(
    tmp_path: Path, stage: dict[str, object], message: str
) -> None:
    doc = space_doc(**stage)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    start = time.monotonic()
    code, _, err = invoke("spaces", "show", str(tmp_path / "s.yaml"))
    assert time.monotonic() - start < 10
    assert one_line(code, err) and message in err, err


def test_yaml_documents_are_bounded(tmp_path: Path) -> None:
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)
    ]
    (tmp_path / "bomb.yaml").write_text(TINY.read_text() + "\n".join(bomb) + "\n")
    code, _, err = invoke("spaces", "show", str(tmp_path / "bomb.yaml"))
    assert one_line(code, err) and "more than 1,000,000 values" in err
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 10_000 + "]" * 10_000 + "\n")
    code, _, err = invoke("count", str(tmp_path / "deep.yaml"))
    assert one_line(code, err) and "nest" in err
    (tmp_path / "dup.yaml").write_text(TINY.read_text() + "name: again\n")
    code, _, err = invoke("spaces", "show", str(tmp_path / "dup.yaml"))
    assert one_line(code, err) and "key 'name' appears twice" in err and "first on line 2" in err


def test_spec_repeat_and_widths_are_bounded(tmp_path: Path) -> None:
    spec = yaml.safe_load((FIXTURES / "deepmad_r50.yaml").read_text())
    spec["stages"][0]["blocks"][0]["repeat"] = 100_000_000
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(spec))
    start = time.monotonic()
    code, _, err = invoke("count", str(tmp_path / "r.yaml"))
    assert time.monotonic() - start < 5
    assert one_line(code, err) and f"at most {MAX_DEPTH:,}" in err
    spec = yaml.safe_load((FIXTURES / "deepmad_r50.yaml").read_text())
    spec["stem"]["out_channels"] = 10**12
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(spec))
    code, _, err = invoke("count", str(tmp_path / "w.yaml"))
    assert one_line(code, err) and "out_channels" in err


def test_sweeps_are_bounded_before_expansion(tmp_path: Path) -> None:
    doc = {
        "base": {"space": "nb201", "score": "entropy"},
        "grid": {"seed": list(range(1000)), "trials": list(range(1, 1001))},
    }
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(doc))
    start = time.monotonic()
    code, _, err = invoke("sweep", str(tmp_path / "big.yaml"), "--check")
    assert time.monotonic() - start < 10
    assert one_line(code, err) and "1,000,000 runs" in err and f"{MAX_SWEEP_POINTS:,}" in err


# -- classes of tracebacks ----------------------------------------------------------------------


def test_files_that_are_not_utf8_or_have_impossible_names(tmp_path: Path, sqlite_url: str) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(TINY.read_bytes().replace(b"A small", b"A sm\xe4ll"))
    for args in (
        ["spaces", "show", str(bad)],
        ["count", str(bad)],
        ["sweep", str(bad), "--check"],
    ):
        code, _, err = invoke(*args)
        assert one_line(code, err) and "not UTF-8" in err, err
    table = tmp_path / "t.csv"
    table.write_bytes(b"arch_str,acc\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\xff\n")
    code, _, err = invoke("run", "--space", "nb201", "--table", str(table), db=sqlite_url)
    assert one_line(code, err) and "not UTF-8" in err
    long = "x" * 5000 + ".yaml"
    for args in (
        ["spaces", "show", long],
        ["count", long],
        ["run", "--space", long],
        ["run", "--space", "nb201", "--table", long],
        ["sweep", long, "--check"],
        ["supernet", "extract", long, "abcdef12"],
    ):
        code, _, err = invoke(*args, db=sqlite_url if args[0] != "spaces" else None)
        assert one_line(code, err), (args[0], err)


def test_numbers_beyond_the_databases_ranges(db_url: str) -> None:
    base = ["run", "--space", "hybrid", "--score", "entropy", "--trials", "2"]
    for extra, message in (
        (["--budget", "1e99999999FLOP"], "out of range"),
        (["--budget", ""], "is empty"),
        (["--budget", ","], "is empty"),
        (["--trials", str(2**40)], "--trials"),
        (["--seed", str(2**40)], "--seed"),
        (["--seed", "-1"], "--seed"),
        (["--time-limit", "nan"], "--time-limit"),
        (["--time-limit", "inf"], "--time-limit"),
        (["--batch-size", "0"], "--batch-size"),
        (["--batch-size", str(10**9)], "--batch-size"),
        (["--resume", str(2**40)], "there is no run"),
    ):
        code, _, err = invoke(*(base if extra[0] != "--resume" else ["run"]), *extra, db=db_url)
        assert one_line(code, err) and message in err, (extra, err)
    code, _, err = invoke(*base, db=db_url)
    assert code == 0, err
    for where in (f"params < {10**30}", "params < 1e99999", "macs > -1e400k"):
        code, out, err = invoke("pareto", "--run", "1", "--where", where, "-f", "json", db=db_url)
        assert code == 0, (where, err)
    code, _, err = invoke(
        "pareto", "--run", "1", "--where", " and ".join(["params<5M"] * 500), db=db_url
    )
    assert one_line(code, err) and "comparisons" in err
    code, _, err = invoke("pareto", "--run", "1", "--limit", "-5", db=db_url)
    assert one_line(code, err) and "--limit" in err
    code, _, err = invoke("pareto", "--run", str(2**63), db=db_url)
    assert one_line(code, err)


def test_read_only_database_refuses_writes_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    code, _, err = invoke(
        "run", "--space", "hybrid", "--score", "entropy", "--trials", "2", db=f"sqlite:///{db}"
    )
    assert code == 0, err
    before = db.read_bytes()
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"
    code, out, err = invoke("runs", "-f", "json", db=read_only)
    assert code == 0 and json.loads(out)[0]["id"] == 1
    code, _, err = invoke(
        "run", "--space", "hybrid", "--score", "entropy", "--trials", "2", db=read_only
    )
    assert one_line(code, err) and "read-only" in err
    assert len(Store(f"sqlite:///{db}").list_runs()) == 1 and db.read_bytes() == before


def test_options_of_the_wrong_type(sqlite_url: str) -> None:
    for flag, option, message in (
        ("-D", "threads=abc", "option threads='abc' must be an integer"),
        ("-D", "channels_last=3", "must be true or false"),
        ("-O", "population=[1, 2]", "option population=[1, 2] must be an integer"),
        ("-O", "mutation_prob=.nan", "must be a finite number"),
        ("-S", "seed=99999999999999999999", "must be an integer"),
        ("-O", "criterion=", "'criterion=' has no value; write criterion=<value> or leave"),
        ("-D", "threads= ", "'threads= ' has no value"),
        ("-S", "seed=", "'seed=' has no value"),
        ("-O", "importance=", "-O importance=: give a supernet checkpoint trained with"),
    ):
        code, _, err = invoke(
            "run", "--space", str(TINY), "--trials", "2", "--latency", "900ms", flag, option,
            db=sqlite_url,
        )  # fmt: skip
        assert one_line(code, err) and message in err, (option, err)


def test_table_column_names_beyond_the_metric_width_are_refused_on_both_databases(
    tmp_path: Path, db_url: str
) -> None:
    table = tmp_path / "t.csv"
    cell = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    table.write_text(f"arch_str,{'a' * 65}\n{cell},1\n")
    code, _, err = invoke("run", "--space", "nb201", "--table", str(table), db=db_url)
    assert one_line(code, err) and "1 to 64 characters" in err
    assert Store(db_url).list_runs() == []


def test_a_table_that_matches_no_member_is_reported(tmp_path: Path, sqlite_url: str) -> None:
    table = tmp_path / "t.csv"
    table.write_text("digest,acc\nabcdef123456,1\n")
    r = runner.invoke(
        app,
        ["run", "--space", "nb201", "--table", str(table), "--trials", "4", "--db", sqlite_url],
    )
    assert r.exit_code == 0
    assert "none of 64 sampled members of space 'nb201' has a row" in r.stderr
    assert "warning: acc is NaN for all 4 new trials" in r.stderr


def test_bench_checks_every_strategy_before_running(tmp_path: Path, nb201_table: Path) -> None:
    db = f"sqlite:///{tmp_path / 'b.db'}"
    code, _, err = invoke(
        "bench", "search", "--space", "nb201", "--table", str(nb201_table),
        "--strategies", "random,foo", "--trials", "5", "--seeds", "2", "--db", db,
    )  # fmt: skip
    assert one_line(code, err) and "unknown strategy 'foo'" in err
    assert not (tmp_path / "b.db").exists() or Store(db).list_runs() == []


def test_proxy_flags_apply_to_the_default_score(sqlite_url: str) -> None:
    code, _, err = invoke(
        "run", "--space", str(TINY), "--proxy-input", "3x16x16", "--proxy-batch", "4",
        "--trials", "2", db=sqlite_url,
    )  # fmt: skip
    assert code == 0, err
    (run,) = Store(sqlite_url).list_runs()
    assert run.config.evaluators["naswot"]["input"] == "3x16x16"
    assert run.config.evaluators["naswot"]["batch"] == 4


@pytest.mark.slow
def test_latency_check_on_a_fresh_database_profiles_what_it_needs(sqlite_url: str) -> None:
    code, out, err = invoke(
        "latency", "check", "--space", "hybrid", "--n", "2", "-D", "threads=1", "-f", "json",
        db=sqlite_url,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["summary"]["n"] == 2


# -- runs: stale, delete, output ---------------------------------------------------------------


def test_stale_runs_are_shown_and_deleted_without_touching_others(sqlite_url: str) -> None:
    for seed in ("1", "2"):
        code, _, err = invoke(
            "run", "--space", "hybrid", "--score", "entropy", "--trials", "5", "--seed", seed,
            db=sqlite_url,
        )  # fmt: skip
        assert code == 0, err
    store = Store(sqlite_url)
    keep = {t.digest for t in store.trials(2)}
    from sqlalchemy import update

    from archsearch.db.models import RunModel

    with store.transaction() as s:  # run 1's owner died on another machine long ago
        s.execute(
            update(RunModel)
            .where(RunModel.id == 1)
            .values(status="running", owner="gone:1", heartbeat_at=datetime(2020, 1, 1))
        )
    code, out, _ = invoke("runs", "--stale", "-f", "json", db=sqlite_url)
    assert code == 0 and [r["id"] for r in json.loads(out)] == [1]
    assert json.loads(out)[0]["status"] == "stale"
    code, _, err = invoke("runs", "delete", "1", db=sqlite_url)
    assert one_line(code, err) and "--yes" in err
    code, _, err = invoke("runs", "delete", "1", "--yes", db=sqlite_url)
    assert code == 0 and "5 trials" in err
    assert [r.id for r in store.list_runs()] == [2]
    assert {t.digest for t in store.trials(2)} == keep
    for digest in keep:
        assert store.architecture(digest).digest == digest
    code, _, err = invoke("runs", "delete", "1", "--yes", db=sqlite_url)
    assert one_line(code, err) and "no run 1" in err


def test_version_and_help_fit_80_columns() -> None:
    from archsearch import __version__

    code, out, _ = invoke("--version")
    assert code == 0 and out.strip() == f"archsearch {__version__}"
    for args in (
        [], ["run"], ["pareto"], ["runs"], ["latency", "check"], ["supernet", "train"],
        ["sweep"], ["bench", "search"],
    ):  # fmt: skip
        r = runner.invoke(
            app,
            [*args, "--help"],
            env={"COLUMNS": "80"},
        )
        assert r.exit_code == 0
        assert all(len(line) <= 80 for line in r.stdout.splitlines()), args
        assert "<bool>" not in r.stdout
    r = runner.invoke(
        app,
        ["run", "--help"],
        env={"COLUMNS": "80"},
    )
    assert "images per proxy pass. (default: 16)" in " ".join(r.stdout.split())
    assert "macs:min,entropy:max" in r.stdout.replace("\n", "").replace(" ", "")


@pytest.mark.slow
def test_space_sizes_agree_between_list_and_show() -> None:
    code, out, _ = invoke("spaces", "list", "-f", "json")
    listed = {r["name"]: r["log10_size"] for r in json.loads(out)}
    code, out, _ = invoke("spaces", "show", "convnet", "-f", "json")
    assert listed["convnet"] == json.loads(out)["size"]["log10_feasible"] > 20


def test_dataset_bombs_are_refused_before_they_fill_memory(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    from PIL import Image

    import archsearch.data as data

    monkeypatch.setattr(data, "MAX_DATA_BYTES", 100_000)
    monkeypatch.setattr(data, "MAX_INPUT_ELEMENTS", 100)
    data._load.cache_clear()
    base = ["run", "--space", str(TINY), "--score", "train", "--trials", "1"]
    np.savez_compressed(
        tmp_path / "zip.npz", x=np.zeros((1000, 1, 16, 16), np.uint8), y=np.zeros(1000, np.int64)
    )
    assert (tmp_path / "zip.npz").stat().st_size < 10_000  # 256 kB unpacked
    code, _, err = invoke(*base, "--data", f"npz:{tmp_path / 'zip.npz'}", db=sqlite_url)
    assert one_line(code, err) and "unpacks to" in err, err
    idx = tmp_path / "idx"
    idx.mkdir()
    header = bytes([0, 0, 8, 3]) + (2000).to_bytes(4, "big") + (16).to_bytes(4, "big") * 2
    with gzip.open(idx / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(header + bytes(2000 * 256))
    with gzip.open(idx / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (2000).to_bytes(4, "big") + bytes(2000))
    code, _, err = invoke(*base, "--data", f"idx:{idx}", db=sqlite_url)
    assert one_line(code, err) and "archsearch keeps datasets in memory" in err, err
    np.savez(
        tmp_path / "labels.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.array([0, 1, 0, 10**9])
    )
    code, _, err = invoke(*base, "--data", f"npz:{tmp_path / 'labels.npz'}", db=sqlite_url)
    assert one_line(code, err) and "class labels are at most" in err, err
    for c in ("a", "b"):
        (tmp_path / "img" / c).mkdir(parents=True)
        Image.new("L", (20, 20)).save(tmp_path / "img" / c / "1.png")
    code, _, err = invoke(*base, "--data", f"folder:{tmp_path / 'img'}", db=sqlite_url)
    assert one_line(code, err) and "20x20 pixels; at most 100" in err, err
    data._load.cache_clear()
