"""The table evaluator: columns of a user's CSV as metrics, keyed by digest or arch_str."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from archsearch.db import Store
from archsearch.errors import UserError
from archsearch.evaluators import Table, guess_direction
from archsearch.search import configure, optimize
from archsearch.spaces import Space, load_space
from archsearch.spaces.nb201 import cell_ops
from tests.conftest import synthetic_nb201_row


@pytest.fixture(scope="module")
def nb201() -> Space:
    return load_space("nb201")


def test_arch_str_table_scores_every_cell(nb201: Space, nb201_table: Path) -> None:
    table = Table(path=str(nb201_table))
    assert table.key == "arch_str"
    assert [m.name for m in table.metrics] == ["acc_test", "idx", "lat_ms_dev"]
    assert [m.direction for m in table.metrics] == ["max", "max", "min"]
    archs = [nb201.sample(seed=i) for i in range(20)]
    for arch, values in zip(archs, table.evaluate(archs), strict=True):
        expected = synthetic_nb201_row(cell_ops(arch))
        assert values["acc_test"] == expected["acc_test"]
        assert values["lat_ms_dev"] == expected["lat_ms_dev"]
    assert table.misses == 0


def test_digest_table_with_prefixes_and_misses(tmp_path: Path, nb201: Space) -> None:
    a, b, c = (nb201.sample(seed=i) for i in range(3))
    path = tmp_path / "measured.csv"
    path.write_text(f"digest,latency_ms,top1,name\n{a.digest},1.5,70,x\n{b.digest[:8]},2.5,,y\n")
    table = Table(path=str(path), metric="top1")
    assert [m.name for m in table.metrics] == ["top1", "latency_ms"]
    va, vb, vc = table.evaluate([a, b, c])
    assert va == {"top1": 70.0, "latency_ms": 1.5}
    assert math.isnan(vb["top1"]) and vb["latency_ms"] == 2.5  # an empty cell is NaN
    assert all(math.isnan(v) for v in vc.values()) and table.misses == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("name,acc\nx,1\n", "no key column"),
        ("digest,acc\nabcdef12,1\nabcdef12,2\n", "appears twice"),
        ("digest,acc\nabcdef12,1,3\n", "3 fields, but the header has 2"),
        ("digest,acc\nabc,1\n", "at least 6 characters"),
        ("digest,params\nabcdef12,1\n", "name of an exact cost metric"),
        ("digest,name\nabcdef12,x\n", "no numeric columns"),
    ],
)
def test_bad_tables_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        Table(path=str(path))


def test_options_are_checked(nb201_table: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="pass --table PATH"):
        Table()
    with pytest.raises(UserError, match="cannot read the file"):
        Table(path=str(tmp_path / "missing.csv"))
    with pytest.raises(UserError, match="'accuracy' is not a numeric column"):
        Table(path=str(nb201_table), metric="accuracy")
    with pytest.raises(UserError, match="'note' is not a numeric column"):
        Table(path=str(nb201_table), columns="acc_test,note")
    only = Table(path=str(nb201_table), columns="lat_ms_dev")
    assert [m.name for m in only.metrics] == ["lat_ms_dev"]


def test_a_changed_table_is_refused_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("digest,acc\nabcdef12,1\n")
    config = Table(path=str(path)).config()
    path.write_text("digest,acc\nabcdef12,2\n")
    with pytest.raises(UserError, match="the file changed since the run was started"):
        Table(**config)


def test_directions_follow_column_names() -> None:
    assert guess_direction("lat_ms_pixel3") == "min"
    assert guess_direction("val_loss") == "min"
    assert guess_direction("energy-mJ") == "min"
    assert guess_direction("cifar10_test") == "max"
    assert guess_direction("top1") == "max"


def test_columns_are_objectives_and_constraints(
    tmp_path: Path, nb201: Space, nb201_table: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    search = configure(
        space=nb201,
        strategy="evolution",
        strategy_options={"population": 10, "sample_size": 3},
        scores=["table:acc_test"],
        constraints=["lat_ms_dev <= 4"],
        n_trials=60,
        batch_size=10,
        evaluator_options={"table": {"path": str(nb201_table)}},
    )
    assert [str(o) for o in search.objectives] == ["acc_test:max"]
    outcome = optimize(store, search)
    trials = store.trials(outcome.run_id)
    assert len(trials) == 60
    for t in trials:
        assert t.values["lat_ms_dev"] <= 4
    # the stored run resumes with the same table (path and checksum in its config)
    config = store.get_run(outcome.run_id).config
    assert (
        config.evaluators["table"]["sha256"] and config.evaluators["table"]["metric"] == "acc_test"
    )
    two = configure(
        space=nb201,
        objectives="acc_test:max,lat_ms_dev:min",
        evaluator_options={"table": {"path": str(nb201_table)}},
        scores=["table"],
    )
    assert [str(o) for o in two.objectives] == ["acc_test:max", "lat_ms_dev:min"]
    with pytest.raises(UserError, match="unknown metric 'acc'"):
        configure(
            space=nb201,
            objectives="acc:max",
            scores=["table"],
            evaluator_options={"table": {"path": str(nb201_table)}},
        )
    with pytest.raises(UserError, match="'top5' is not a numeric column"):
        configure(
            space=nb201,
            scores=["table:top5"],
            evaluator_options={"table": {"path": str(nb201_table)}},
        )


def test_arch_str_of_a_non_cell_network_misses(hybrid: Space, nb201_table: Path) -> None:
    table = Table(path=str(nb201_table))
    (values,) = table.evaluate([hybrid.sample(seed=0)])
    assert all(math.isnan(v) for v in values.values())


def test_cli_run_with_a_table_and_a_measured_latency_bound(
    tmp_path: Path, nb201_table: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from archsearch.cli import app

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    args = ["run", "--space", "nb201", "--table", str(nb201_table), "--db", db, "-f", "json"]
    result = runner.invoke(
        app,
        [
            *args,
            "--score",
            "table:acc_test",
            "--latency-column",
            "lat_ms_dev",
            "--latency",
            "4ms",
            "--trials",
            "40",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["front"]
    assert rows and all(r["lat_ms_dev"] <= 4 for r in rows)
    front = runner.invoke(
        app,
        [
            "pareto",
            "--run",
            "1",
            "--db",
            db,
            "--objectives",
            "acc_test:max,lat_ms_dev",
            "-f",
            "json",
        ],
    )
    assert front.exit_code == 0, front.output
    assert {"acc_test", "lat_ms_dev"} <= set(json.loads(front.stdout)[0])
    bad = runner.invoke(app, [*args, "--latency-column", "lat_ms_dev"])
    assert bad.exit_code == 2 and "give the bound too" in bad.output
    bad = runner.invoke(app, [*args, "--objectives", "acc:max"])
    assert bad.exit_code == 2 and "unknown metric 'acc'" in bad.output
