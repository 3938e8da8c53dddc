"""Figures of results: Pareto fronts, search history, predicted vs measured latency, fronts of
several runs compared.

A plot is described once, backend-neutral (:class:`Figure`: axes and :class:`Series`), by the
``*_figure`` functions from plain rows, and :func:`render` writes it by the file's suffix: PNG
or SVG through matplotlib, or a self-contained interactive HTML page through plotly (plotly.js
embedded in the file: nothing is fetched when it is opened). Axis labels carry units and, for
MACs, the FLOP convention (1 FLOP = 1 multiply-accumulate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from archsearch.cost.units import FLOP_CONVENTION
from archsearch.errors import UserError
from archsearch.files import write_atomic

SUFFIXES = (".png", ".svg", ".html")
Kind = Literal["points", "front", "line", "labelled", "guide"]
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


@dataclass
class Series:
    """One set of points: ``points`` faint markers, ``front`` markers joined by a staircase,
    ``line`` a line, ``labelled`` markers with their labels written beside them, ``guide`` a
    dashed reference line. ``hover`` is shown on the interactive page; ``color`` values
    (one per point) colour ``points`` on a scale."""

    name: str
    x: list[float]
    y: list[float]
    kind: Kind = "points"
    hover: list[str] = field(default_factory=list)
    color: list[float] | None = None
    labels: list[str] = field(default_factory=list)
    step: Literal["x", "y"] = "x"


@dataclass
class Figure:
    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    color_label: str = ""
    caption: str = ""
    square: bool = False


@dataclass(frozen=True)
class Axis:
    """How a metric is drawn: its label with unit and the factor its values are divided by."""

    label: str
    scale: float = 1.0

    def __call__(self, values: Sequence[Any]) -> list[float]:
        return [_num(v) / self.scale for v in values]


def axis(metric: str, values: Sequence[Any] = ()) -> Axis:
    """The axis of ``metric``, its unit chosen for ``values`` (GFLOPs or MFLOPs, M or k)."""
    finite = [abs(_num(v)) for v in values if math.isfinite(_num(v))]
    top = max(finite, default=0.0)
    if metric == "macs":
        scale, unit = (1e9, "GFLOPs") if top >= 1e9 else (1e6, "MFLOPs")
        return Axis(f"{unit} (1 FLOP = 1 multiply-accumulate)", scale)
    if metric in ("params", "activations"):
        scale, unit = (1e6, "M") if top >= 1e6 else (1e3, "k")
        what = "parameters" if metric == "params" else "activations (elements)"
        return Axis(f"{what}, {unit}", scale)
    if metric.startswith("latency@"):
        return Axis(f"{metric} (ms, predicted)")
    if "accuracy" in metric:
        return Axis(f"{metric} (%)")
    if metric.endswith("_ms"):
        return Axis(f"{metric[:-3]} (ms)")
    return Axis(metric)


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _hover(row: Mapping[str, Any], names: Sequence[str]) -> str:
    parts = [str(row.get("digest", ""))[:12]]
    if row.get("run") is not None:
        parts.append(f"run {row['run']}")
    for n in names:
        v = row.get(n)
        parts.append(f"{n} {v:.6g}" if isinstance(v, float) else f"{n} {v}")
    return "<br>".join(parts)


def pareto_figure(
    rows: Sequence[Mapping[str, Any]],
    front: Sequence[Mapping[str, Any]],
    objectives: Sequence[tuple[str, str]],
    *,
    title: str,
    color: str | None = None,
    zoo: Sequence[Mapping[str, Any]] = (),
) -> Figure:
    """Every trial (faint, or coloured by ``color``), the front joined by a staircase, and
    the zoo's networks labelled by name."""
    (xm, xd), (ym, yd) = objectives[0], objectives[1]
    everything = [*rows, *zoo]
    ax, ay = axis(xm, [r.get(xm) for r in everything]), axis(ym, [r.get(ym) for r in everything])
    names = list(dict.fromkeys([xm, ym, *([color] if color else [])]))
    series = [
        Series(
            f"trials ({len(rows)})",
            ax([r.get(xm) for r in rows]),
            ay([r.get(ym) for r in rows]),
            hover=[_hover(r, names) for r in rows],
            color=[_num(r.get(color)) for r in rows] if color else None,
        )
    ]
    series.append(_staircase(f"Pareto front ({len(front)})", front, objectives, ax, ay, names))
    if zoo:
        series.append(
            Series(
                "seed zoo",
                ax([r.get(xm) for r in zoo]),
                ay([r.get(ym) for r in zoo]),
                kind="labelled",
                labels=[str(r.get("name", r.get("digest", "")))[:24] for r in zoo],
                hover=[_hover(r, names) for r in zoo],
            )
        )
    return Figure(
        title,
        f"{ax.label}, {'lower' if xd == 'min' else 'higher'} is better",
        f"{ay.label}, {'lower' if yd == 'min' else 'higher'} is better",
        series,
        color_label=color or "",
        caption=_caption(xm, ym),
    )


def _staircase(
    name: str,
    front: Sequence[Mapping[str, Any]],
    objectives: Sequence[tuple[str, str]],
    ax: Axis,
    ay: Axis,
    hover: Sequence[str],
) -> Series:
    """A front as a staircase from its best point on the x objective."""
    (xm, xd), (ym, _) = objectives[0], objectives[1]
    ordered = sorted(front, key=lambda r: _num(r.get(xm)), reverse=xd == "max")
    return Series(
        name,
        ax([r.get(xm) for r in ordered]),
        ay([r.get(ym) for r in ordered]),
        kind="front",
        hover=[_hover(r, hover) for r in ordered],
    )


def compare_figure(
    fronts: Mapping[str, Sequence[Mapping[str, Any]]],
    objectives: Sequence[tuple[str, str]],
    *,
    title: str,
) -> Figure:
    """The fronts of several runs on the same axes, one staircase each."""
    (xm, xd), (ym, yd) = objectives[0], objectives[1]
    every = [r for f in fronts.values() for r in f]
    ax, ay = axis(xm, [r.get(xm) for r in every]), axis(ym, [r.get(ym) for r in every])
    series = [
        _staircase(f"{name} ({len(front)})", front, objectives, ax, ay, [xm, ym])
        for name, front in fronts.items()
    ]
    return Figure(
        title,
        f"{ax.label}, {'lower' if xd == 'min' else 'higher'} is better",
        f"{ay.label}, {'lower' if yd == 'min' else 'higher'} is better",
        series,
        caption=_caption(xm, ym),
    )


def history_figure(
    rows: Sequence[Mapping[str, Any]],
    metric: str,
    direction: str,
    *,
    title: str,
    x: Literal["trial", "seconds"] = "trial",
) -> Figure:
    """Every trial's value against its number (or its finish time) and the best so far."""
    ordered = sorted(
        (r for r in rows if math.isfinite(_num(r.get(metric))) and r.get(x) is not None),
        key=lambda r: _num(r.get(x)),
    )
    ay = axis(metric, [r.get(metric) for r in ordered])
    xs = [_num(r.get(x)) for r in ordered]
    best: list[float] = []
    for r in ordered:
        v = _num(r.get(metric))
        if not best:
            best.append(v)
        else:
            best.append(min(best[-1], v) if direction == "min" else max(best[-1], v))
    return Figure(
        title,
        "trial number" if x == "trial" else "seconds since the run's first trial finished",
        ay.label,
        [
            Series(
                f"trials ({len(ordered)})",
                xs,
                ay([r.get(metric) for r in ordered]),
                hover=[_hover(r, [metric]) for r in ordered],
            ),
            Series("best so far", xs, ay(best), kind="front", step="x"),
        ],
        caption=_caption(metric),
    )


def latency_figure(rows: Sequence[Mapping[str, Any]], *, title: str) -> Figure:
    """Predicted against measured whole-network latency, with y = x and +-10% guides."""
    pairs = [
        (_num(r.get("median_ms")), _num(r.get("predicted_ms")), r)
        for r in rows
        if math.isfinite(_num(r.get("median_ms"))) and math.isfinite(_num(r.get("predicted_ms")))
    ]
    hi = max((max(m, p) for m, p, _ in pairs), default=1.0) * 1.05
    within = sum(abs(p - m) <= 0.1 * m for m, p, _ in pairs)
    share = f"{within / len(pairs):.0%} within +-10%" if pairs else "no measurements"
    return Figure(
        f"{title}: {len(pairs)} networks, {share}",
        "measured latency (ms, median)",
        "predicted latency (ms)",
        [
            Series("y = x", [0.0, hi], [0.0, hi], kind="line"),
            Series(
                "+-10%",
                [0.0, hi, math.nan, 0.0, hi],
                [0.0, hi * 1.1, math.nan, 0.0, hi * 0.9],
                kind="guide",
            ),
            Series(
                "networks",
                [m for m, _, _ in pairs],
                [p for _, p, _ in pairs],
                hover=[_hover(r, ["median_ms", "predicted_ms"]) for _, _, r in pairs],
            ),
        ],
        square=True,
    )


def _caption(*metrics: str) -> str:
    return f"MACs: {FLOP_CONVENTION}." if "macs" in metrics else ""


# -- rendering ---------------------------------------------------------------------------


def check_suffix(path: Path, flag: str = "--out") -> str:
    """The renderer ``path``'s suffix selects.

    Raises:
        UserError: another suffix.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(
            f"{flag}={path}: a plot is written as .png, .svg (matplotlib) or .html (plotly, "
            "interactive); choose one of those suffixes"
        )
    return suffix


def render(figure: Figure, out: str | Path) -> None:
    """Writes ``figure`` to ``out`` (.png, .svg or .html), atomically."""
    path = Path(out)
    suffix = check_suffix(path)
    data = _plotly(figure) if suffix == ".html" else _matplotlib(figure, suffix[1:])
    write_atomic(path, data)


def _matplotlib(figure: Figure, fmt: str) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 6.0 if figure.square else 4.6), dpi=130)
    colors = iter(_PALETTE[1:])
    for s in figure.series:
        if s.kind == "points":
            if s.color is not None:
                sc = ax.scatter(s.x, s.y, c=s.color, s=10, cmap="viridis", alpha=0.7, label=s.name)
                fig.colorbar(sc, ax=ax, label=figure.color_label)
            else:
                ax.scatter(s.x, s.y, s=9, color="#9aa7b4", alpha=0.6, label=s.name, lw=0)
        elif s.kind == "front":
            c = next(colors)
            ax.step(s.x, s.y, where="post" if s.step == "x" else "pre", color=c, lw=1.4, alpha=0.9)
            ax.scatter(s.x, s.y, s=22, color=c, label=s.name, zorder=3)
        elif s.kind == "labelled":
            ax.scatter(s.x, s.y, s=40, marker="*", color="black", label=s.name, zorder=4)
            for x, y, label in zip(s.x, s.y, s.labels, strict=True):
                ax.annotate(label, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
        elif s.kind == "line":
            ax.plot(s.x, s.y, color="black", lw=1, label=s.name)
        else:
            ax.plot(s.x, s.y, color="black", lw=1, ls=":", label=s.name)
    ax.set_title(figure.title, fontsize=10)
    ax.set_xlabel(figure.xlabel, fontsize=9)
    ax.set_ylabel(figure.ylabel, fontsize=9)
    ax.grid(alpha=0.25)
    ax.legend(fontsize=8, loc="best")
    if figure.caption:
        fig.text(0.01, 0.005, figure.caption, fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.03 if figure.caption else 0, 1, 1))
    buf = io.BytesIO()
    # no timestamps in the files, so that regenerating an unchanged plot changes no bytes
    meta = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buf, format=fmt, metadata=meta)
    plt.close(fig)
    return buf.getvalue()


def _plotly(figure: Figure) -> bytes:
    import plotly.graph_objects as go

    fig = go.Figure()
    colors = iter(_PALETTE[1:])
    for s in figure.series:
        common: dict[str, Any] = {"x": s.x, "y": s.y, "name": s.name}
        if s.hover:
            common |= {"text": s.hover, "hovertemplate": "%{text}<extra></extra>"}
        if s.kind == "points":
            marker: dict[str, Any] = {"size": 5, "opacity": 0.6}
            if s.color is not None:
                marker |= {
                    "color": s.color,
                    "colorscale": "Viridis",
                    "colorbar": {"title": figure.color_label},
                }
            else:
                marker["color"] = "#9aa7b4"
            fig.add_trace(go.Scattergl(mode="markers", marker=marker, **common))
        elif s.kind == "front":
            shape = "hv" if s.step == "x" else "vh"
            fig.add_trace(
                go.Scatter(
                    mode="lines+markers",
                    line={"shape": shape, "color": next(colors)},
                    marker={"size": 7},
                    **common,
                )
            )
        elif s.kind == "labelled":
            fig.add_trace(
                go.Scatter(
                    mode="markers+text",
                    marker={"symbol": "star", "size": 11, "color": "black"},
                    textposition="top right",
                    **{**common, "text": s.labels, "hovertext": s.hover, "hovertemplate": None},
                )
            )
        else:
            dash = "dot" if s.kind == "guide" else "solid"
            fig.add_trace(
                go.Scatter(mode="lines", line={"color": "black", "dash": dash}, **common)
            )
    title = figure.title + (f"<br><sup>{figure.caption}</sup>" if figure.caption else "")
    fig.update_layout(
        title=title,
        xaxis_title=figure.xlabel,
        yaxis_title=figure.ylabel,
        template="plotly_white",
        hovermode="closest",
    )
    html: str = fig.to_html(include_plotlyjs=True, full_html=True)
    return html.encode()
