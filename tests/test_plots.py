"""Figures: what each plot draws, and the three file types it is written as."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from archsearch import plots
from archsearch.errors import UserError
from archsearch.pareto import front_rows


def _rows(n: int = 60, seed: int = 0) -> list[dict[str, float | int | str]]:
    rng = random.Random(seed)
    return [
        {
            "trial": i,
            "digest": f"{i:064x}",
            "macs": rng.randint(10**8, 2 * 10**9),
            "params": rng.randint(10**5, 10**7),
            "naswot": rng.uniform(100, 200),
        }
        for i in range(n)
    ]


def test_axes_carry_units_and_the_flop_convention() -> None:
    assert plots.axis("macs", [2e9]).label == "GFLOPs (1 FLOP = 1 multiply-accumulate)"
    assert plots.axis("macs", [2e9])([3e9]) == [3.0]
    assert plots.axis("macs", [5e8]).label.startswith("MFLOPs")
    assert plots.axis("params", [5e6]).label == "parameters, M"
    assert plots.axis("latency@cpu").label == "latency@cpu (ms, predicted)"
    assert plots.axis("train_accuracy").label == "train_accuracy (%)"
    assert plots.axis("naswot").label == "naswot"


def test_the_pareto_figure_draws_every_trial_the_front_and_the_zoo() -> None:
    rows = _rows()
    objectives = [("macs", "min"), ("naswot", "max")]
    front = front_rows(rows, objectives)
    zoo = [{"name": "resnet50", "macs": 4.1e9, "naswot": 150.0}]
    fig = plots.pareto_figure(rows, front, objectives, title="t", color="params", zoo=zoo)
    trials, line, labelled = fig.series
    assert len(trials.x) == 60 and trials.color is not None and len(trials.color) == 60
    assert line.kind == "front" and len(line.x) == len(front)
    assert line.x == sorted(line.x)  # a staircase from the cheapest
    assert all(b >= a for a, b in zip(line.y, line.y[1:], strict=False))  # max: rising
    assert labelled.labels == ["resnet50"] and labelled.x == [4.1]
    assert fig.xlabel == "GFLOPs (1 FLOP = 1 multiply-accumulate), lower is better"
    assert "1 multiply-accumulate" in fig.caption


def test_history_keeps_the_best_so_far() -> None:
    rows = _rows()
    fig = plots.history_figure(rows, "naswot", "max", title="t")
    points, best = fig.series
    assert points.x == [float(i) for i in range(60)]
    assert best.y == [max(points.y[: i + 1]) for i in range(60)]
    fig = plots.history_figure(rows, "macs", "min", title="t")
    assert fig.series[1].y[-1] == min(fig.series[0].y)


def test_latency_counts_the_networks_within_ten_percent() -> None:
    rows = [
        {"digest": "a" * 64, "median_ms": 1.0, "predicted_ms": 1.05},
        {"digest": "b" * 64, "median_ms": 2.0, "predicted_ms": 2.5},
        {"digest": "c" * 64, "median_ms": 2.0, "predicted_ms": None},
    ]
    fig = plots.latency_figure(rows, title="cpu")
    assert fig.title == "cpu: 2 networks, 50% within +-10%"
    assert fig.series[-1].x == [1.0, 2.0]


@pytest.mark.parametrize("suffix", [".png", ".svg", ".html"])
def test_every_suffix_is_written(tmp_path: Path, suffix: str) -> None:
    rows = _rows()
    objectives = [("macs", "min"), ("naswot", "max")]
    fig = plots.pareto_figure(rows, front_rows(rows, objectives), objectives, title="t")
    out = tmp_path / f"p{suffix}"
    plots.render(fig, out)
    data = out.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
    elif suffix == ".svg":
        assert b"<svg" in data[:2000]
    else:
        text = data.decode()
        assert "Plotly.newPlot" in text and '<script src="http' not in text  # self-contained
        assert "0000000000" in text  # the hover names the digest
    assert out.stat().st_mode & 0o777 == 0o644 or out.stat().st_mode & 0o044


def test_another_suffix_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--out=.*p\.pdf: a plot is written as \.png, \.svg"):
        plots.check_suffix(tmp_path / "p.pdf")


def test_nan_values_are_left_out_of_the_history() -> None:
    rows = [{"trial": 0, "naswot": math.nan}, {"trial": 1, "naswot": 3.0}]
    (points, best) = plots.history_figure(rows, "naswot", "max", title="t").series
    assert points.y == [3.0] and best.y == [3.0]
