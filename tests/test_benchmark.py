"""``archsearch bench search``: ground truth, regret, queries to the optimum, hypervolume."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from archsearch.benchmark import bench_search, ground_truth
from archsearch.blocks.cells import EDGE_PARAMS, OPS
from archsearch.cli import app
from archsearch.errors import UserError
from archsearch.evaluators import Table
from archsearch.pareto import hypervolume, pareto_front_mask, to_minimisation
from archsearch.search import parse_objectives
from archsearch.spaces import load_space
from tests.conftest import synthetic_nb201_row


def brute_force(bound: float) -> tuple[float, np.ndarray]:
    rows = [
        synthetic_nb201_row(dict(zip(EDGE_PARAMS, c, strict=True)))
        for c in itertools.product(OPS, repeat=6)
    ]
    ok = [r for r in rows if r["lat_ms_dev"] <= bound]
    v = to_minimisation([[r["acc_test"], r["lat_ms_dev"]] for r in ok], ["max", "min"])
    return max(r["acc_test"] for r in ok), v


@pytest.mark.slow
def test_ground_truth_is_the_brute_force_optimum(nb201_table: Path) -> None:
    table = Table(path=str(nb201_table))
    objs = parse_objectives(
        "acc_test:max,lat_ms_dev:min", extra={m.name: m for m in table.metrics}
    )
    truth = ground_truth(load_space("nb201"), table, objs, constraints=["lat_ms_dev <= 6"])
    best, v = brute_force(6.0)
    assert truth.members == 15625 and truth.feasible == len(v)
    assert truth.best == best
    front = np.unique(v[pareto_front_mask(v)], axis=0)
    assert np.array_equal(np.unique(truth.front, axis=0), front)
    assert np.array_equal(truth.reference, v.max(axis=0))
    assert truth.hypervolume == pytest.approx(hypervolume(front, v.max(axis=0)))


@pytest.mark.slow
def test_bench_search_measures_and_is_deterministic(nb201_table: Path) -> None:
    def go() -> list[dict]:
        _, summaries = bench_search(
            space=load_space("nb201"),
            table_options={"path": str(nb201_table)},
            strategies=["random", "evolution"],
            trials=[20, 60],
            seeds=2,
            objectives="acc_test:max,lat_ms_dev:min",
            constraints=["lat_ms_dev <= 6"],
            strategy_options={"evolution.population": 10, "sample_size": 3},
        )
        return [s.row() | {"seconds_per_run": 0} for s in summaries]

    rows = go()
    assert [(r["strategy"], r["trials"]) for r in rows] == [
        ("random", 20),
        ("random", 60),
        ("evolution", 20),
        ("evolution", 60),
    ]
    for r in rows:
        assert r["regret_mean"] >= 0 and 0 < r["hv_ratio_mean"] <= 1
        assert r["seeds"] == 2
    assert rows == go()


@pytest.mark.slow
def test_queries_to_the_optimum_count_trials(tmp_path: Path, nb201_table: Path) -> None:
    from archsearch.db import Store

    db = f"sqlite:///{tmp_path / 'b.db'}"
    truth, (summary,) = bench_search(
        space=load_space("nb201"),
        table_options={"path": str(nb201_table)},
        strategies=["evolution"],
        trials=[150],
        seeds=3,
        constraints=["lat_ms_dev <= 1.7"],  # the 3^6 cells without convolutions
        strategy_options={"population": 10, "sample_size": 3},
        db=db,
    )
    assert truth.feasible == 729 and truth.best == 89.0
    store = Store(db)
    found = 0
    for run in summary.runs:
        values = [t.values["acc_test"] for t in store.trials(run.run_id)]
        assert run.regret == pytest.approx(89.0 - max(values))
        if run.queries_to_optimum is None:
            assert max(values) < 89.0
        else:
            found += 1
            assert values[run.queries_to_optimum - 1] == 89.0
            assert max(values[: run.queries_to_optimum - 1], default=0) < 89.0
    assert found  # evolution reaches the optimum in some of the runs


@pytest.mark.slow
def test_bench_refuses_what_it_cannot_measure(tmp_path: Path, nb201_table: Path) -> None:
    common = {"space": load_space("nb201"), "strategies": ["random"], "trials": [5], "seeds": 1}
    with pytest.raises(UserError, match="objectives must be columns"):
        bench_search(table_options={"path": str(nb201_table)}, objectives="naswot:max", **common)
    digest_table = tmp_path / "d.csv"
    digest_table.write_text("digest,acc\nabcdef12,1\n")
    with pytest.raises(UserError, match="needs an arch_str column"):
        bench_search(table_options={"path": str(digest_table)}, **common)
    with pytest.raises(UserError, match="no member of the table is feasible"):
        bench_search(
            table_options={"path": str(nb201_table)}, constraints=["lat_ms_dev <= 0"], **common
        )


@pytest.mark.slow
def test_cli_bench_search(nb201_table: Path) -> None:
    runner = CliRunner()
    args = [
        "bench",
        "search",
        "--space",
        "nb201",
        "--table",
        str(nb201_table),
        "--strategies",
        "random,optuna:nsga2",
        "--trials",
        "30",
        "--seeds",
        "2",
        "--latency-column",
        "lat_ms_dev",
        "--latency",
        "6ms",
        "-O",
        "population_size=10",
    ]
    result = runner.invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["strategy"] for r in rows] == ["random", "optuna:nsga2"]
    table = runner.invoke(app, args)
    assert "ground truth: 15625 members" in table.stdout
    bad = runner.invoke(app, [*args[:-6], "--latency", "6ms"])
    assert bad.exit_code == 2 and "--latency and --latency-column go together" in bad.output
    bad = runner.invoke(app, [*args[:6], "--trials", "a,b"])
    assert bad.exit_code == 2 and "--trials: 'a,b' must be integers" in bad.output


def test_random_regret_is_the_exact_expectation() -> None:
    from archsearch.benchmark import Truth

    v = -np.array([5.0, 4.0, 3.0, 2.0, 1.0])  # maximised values, in minimisation form
    t = Truth((), 5, 5, 5.0, (), np.empty((0, 1)), np.zeros(1), 0.0, v)
    assert t.random_regret(1) == pytest.approx(2.0)  # the mean's distance to the best
    assert t.random_regret(2) == pytest.approx(1.0)  # E[max of 2 of 5] = 4
    assert t.random_regret(5) == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    values = -rng.normal(90, 2, size=300)
    t = Truth((), 300, 300, float(-values.min()), (), np.empty((0, 1)), np.zeros(1), 0.0, values)
    draws = [values[rng.choice(300, 20, replace=False)].min() for _ in range(20000)]
    assert t.random_regret(20) == pytest.approx(np.mean(draws) - values.min(), abs=0.02)
