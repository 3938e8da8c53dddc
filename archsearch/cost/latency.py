"""Latency: the measurement protocol, block signatures and the look-up-table predictor.

Measurement protocol (:func:`measure_interleaved`): every runner is first warmed up
``warmup`` times; then ``repeats`` rounds time each runner once per round, in turn, so that a
slow drift of the machine spreads over all of them instead of biasing the last ones; every
sample is paired with a sample of a fixed *reference* workload (:func:`reference_module`)
taken just before it, and the sample's ratio to it is kept; statistics are outlier-robust:
median, 10th and 90th percentiles, inter-quartile range (the mean for reference), and the
median ratio to the reference. Devices fix their settings (threads) for the whole measurement.

Why the reference: on shared machines the speed of the whole machine drifts by 10-30% over
seconds to minutes (neighbours, frequency). A block's latency in units of the reference
measured beside it cancels most of that drift: on the 2-core development VM, two profiling
passes of the same blocks agreed to a median 3.4% in reference units against 8.4% in raw
milliseconds (see the README).

Table keys (:func:`block_signature`): a block (type, width, parameters), its input shape and
its input's memory layout (:data:`LAYOUTS`). In a torch network the layout flows from block to
block, and a block times differently on each; so each entry also records the layout of the
block's output, and the predictor walks a network from the stem (fed the device's input
layout) to the head, looking each block up at the layout the previous one handed on.

Predictor (:class:`LatencyModel`): a network's latency is the sum of its blocks' entries in
reference units (stem, downsamples, blocks, head), each times its block type's scale, times
the reference latency: the nominal one measured at calibration, or, to compare with a
measurement, the one measured in the same session. The scales correct how a block timed alone
differs from the same block inside a network (per-call overheads, cache state). They are
fitted on a few whole networks (:func:`fit_correction`) by ridge regression toward one global
scale (the median ratio of measured to summed latency), the strength chosen by leave-one-out
error with the one-standard-error rule, so that with few or noisy networks the fit keeps the
global scale instead of following noise.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from archsearch.blocks import Shape
from archsearch.errors import UserError
from archsearch.spec import Architecture, Block

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_latency(text: str) -> float:
    """``"40ms"``, ``"0.04s"``, ``"1500us"`` -> milliseconds."""
    s = text.strip().lower()
    for unit in ("us", "ms", "s"):
        if s.endswith(unit):
            try:
                value = float(s[: -len(unit)])
            except ValueError:
                break
            if value > 0 and math.isfinite(value):
                return value * _UNITS[unit]
            break
    raise UserError(f"--latency: {text!r} is not a latency; write e.g. 40ms, 0.04s or 1500us")


@dataclass(frozen=True)
class Timing:
    """Robust statistics of repeated timings (ms), and the median ratio to the reference."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    iqr_ms: float
    mean_ms: float
    repeats: int
    warmup: int
    rel_median: float
    ref_ms: float

    @classmethod
    def from_samples(
        cls, samples_ms: Sequence[float], warmup: int, ref_ms: Sequence[float] | None = None
    ) -> Timing:
        """Statistics of ``samples_ms``; ``ref_ms[i]`` is the reference sample paired with it."""
        if not samples_ms:
            raise ValueError("no timing samples")
        a = np.asarray(samples_ms, dtype=np.float64)
        p10, q1, med, q3, p90 = np.percentile(a, [10, 25, 50, 75, 90])
        rel = ref = math.nan
        if ref_ms is not None:
            r = np.asarray(ref_ms, dtype=np.float64)
            rel, ref = float(np.median(a / r)), float(np.median(r))
        return cls(
            float(med),
            float(p10),
            float(p90),
            float(q3 - q1),
            float(a.mean()),
            len(a),
            warmup,
            rel,
            ref,
        )

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


REFERENCE_SHAPE = (64, 28, 28)


def reference_module() -> Any:
    """The reference workload: a 3x3 and a 1x1 convolution of 64 channels at 28x28."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.Conv2d(64, 64, 1))


def measure_interleaved(
    runners: Sequence[Callable[[], None]],
    time_once: Callable[[Callable[[], None]], float],
    *,
    warmup: int,
    repeats: int,
    reference: Callable[[], None] | None = None,
) -> list[Timing]:
    """Times every runner ``repeats`` times, round-robin, after ``warmup`` calls each.

    With a ``reference`` runner, each sample is paired with a reference sample taken just
    before it (see the module docstring).
    """
    if warmup < 0 or repeats < 1:
        raise UserError(f"warmup={warmup} must be >= 0 and repeats={repeats} >= 1")
    for run in [*runners, *([reference] if reference is not None else [])]:
        for _ in range(warmup):
            run()
    samples: list[list[float]] = [[] for _ in runners]
    refs: list[list[float]] = [[] for _ in runners]
    for _ in range(repeats):
        for i, run in enumerate(runners):
            if reference is not None:
                refs[i].append(time_once(reference))
            samples[i].append(time_once(run))
    return [
        Timing.from_samples(s, warmup, r if reference is not None else None)
        for s, r in zip(samples, refs, strict=True)
    ]


#: Memory layouts of a block's input. Inside a torch network the layout flows from block to
#: block (a block that permutes for a LayerNorm hands on a channels-last tensor, and most
#: blocks keep it), and a block's speed depends on it: on the development CPU an MBConv
#: took 8.5 ms on a channels-last input and 11 ms on the same input in NCHW.
LAYOUTS = ("nchw", "nhwc")

#: A look-up-table key: a block, its input shape (C, H, W) and its input's layout.
Item = tuple[Block, Shape, str]


def tensor_layout(t: Any) -> str:
    """``"nhwc"`` for a 4-D channels-last tensor (that is not also contiguous), else ``"nchw"``."""
    import torch

    channels_last = t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
    return "nhwc" if channels_last and not t.is_contiguous() else "nchw"


@lru_cache(maxsize=65536)
def block_signature(block: Block, in_shape: Shape, layout: str = "nchw") -> str:
    """The look-up-table key of a block at an input shape and layout: a hash of type, width,
    params, shape and layout (the layout is left out for NCHW, the default)."""
    key: dict[str, Any] = {
        "type": block.type,
        "out_channels": block.out_channels,
        "params": dict(block.params),
        "in_shape": list(in_shape),
    }
    if layout != "nchw":
        key["layout"] = layout
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class MissingEntries(Exception):
    """A prediction needs a look-up-table entry that is not measured yet."""

    def __init__(self, missing: list[Item]) -> None:
        self.missing = missing
        super().__init__(f"{len(missing)} block(s) have no latency entry")


@dataclass
class LatencyModel:
    """Predicts network latency from per-block entries and a fitted per-type correction.

    A network is walked stem to head: each block is looked up at its input shape and the
    layout the block it reads from handed on (the previous one, or its stream's last one in a
    network of several streams: :attr:`~archsearch.spec.Layer.source`; the network's input
    layout for the stem), and hands on the output layout recorded when the entry was measured.

    Attributes:
        device_key: The identity of the device the entries were measured on.
        entries: ``(block, input shape, input layout)`` -> median latency in reference units.
        out_layouts: The same keys -> the layout of the block's output.
        ref_ms: The nominal latency of the reference workload (ms).
        scale: The global scale, used for block types without their own (1 uncalibrated).
        type_scales: Scales of block types fitted on calibration networks.
        input_layout: The layout of the network's input on this device.
    """

    device_key: str
    entries: dict[Item, float] = field(default_factory=dict)
    out_layouts: dict[Item, str] = field(default_factory=dict)
    ref_ms: float = 1.0
    scale: float = 1.0
    type_scales: dict[str, float] = field(default_factory=dict)
    input_layout: str = "nchw"

    def __post_init__(self) -> None:
        # Scaled once, so that a prediction is a walk of dictionary lookups.
        self._scaled = {
            key: (rel * self.type_scales.get(key[0].type, self.scale), self.out_layouts[key])
            for key, rel in self.entries.items()
        }

    def items(self, arch: Architecture) -> list[Item]:
        """The table keys of ``arch``'s blocks, stem to head.

        Raises:
            MissingEntries: the first block the table lacks (the layouts after it are unknown).
        """
        out: list[Item] = []
        layouts: list[str] = []  # each layer's output layout
        for layer in arch.layers:
            layout = self.input_layout if layer.source < 0 else layouts[layer.source]
            key = (layer.block, layer.in_shape, layout)
            entry = self._scaled.get(key)
            if entry is None:
                raise MissingEntries([key])
            out.append(key)
            layouts.append(entry[1])
        return out

    def block_sum(self, arch: Architecture) -> float:
        """The sum of the block entries of ``arch`` in reference units, uncorrected.

        Raises:
            MissingEntries: a block is not in the table.
        """
        return sum(self.entries[key] for key in self.items(arch))

    def sums_by_type(self, arch: Architecture) -> dict[str, float]:
        """The block entries of ``arch`` summed per block type (for calibration)."""
        out: dict[str, float] = {}
        for key in self.items(arch):
            out[key[0].type] = out.get(key[0].type, 0.0) + self.entries[key]
        return out

    def predict(self, arch: Architecture, *, ref_ms: float | None = None) -> float:
        """Predicted latency (ms): corrected sum times the (nominal, if None) reference ms."""
        return sum(self.block_ms(arch, ref_ms=ref_ms))

    def block_ms(self, arch: Architecture, *, ref_ms: float | None = None) -> list[float]:
        """Each block's share of :meth:`predict` (ms), stem to head.

        Raises:
            MissingEntries: the table lacks a block (the first one missing is named).
        """
        scale = self.ref_ms if ref_ms is None else ref_ms
        return [self._scaled[key][0] * scale for key in self.items(arch)]


@dataclass(frozen=True)
class Correction:
    """A fitted correction ``measured = sum over blocks of scale[type] * entry`` and its fit.

    Attributes:
        scale: The global scale: the median over calibration networks of measured / summed
            latency; the scale of block types the calibration networks do not contain.
        type_scales: Per block type, the scale fitted by ridge regression toward ``scale``.
        ridge: The regularisation chosen by leave-one-out error on the calibration networks.
        residuals: Measured minus fitted, per network, in reference units.
        n: Calibration networks.
        mape: Mean absolute percentage error of the fit on the calibration networks.
        loo_mape: The same, each network predicted by a fit without it (an honest estimate).
    """

    scale: float
    type_scales: dict[str, float]
    ridge: float
    residuals: list[float]
    n: int
    mape: float
    loo_mape: float


RIDGES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 1e9)


def fit_correction(
    sums_by_type: Sequence[Mapping[str, float]], measured: Sequence[float]
) -> Correction:
    """Fits per-block-type scales on whole networks, regularised toward the global scale.

    Minimises ``sum_i ((y_i - sum_t k_t x_it) / y_i)^2 + ridge * sum_t (k_t - k0)^2`` where
    ``x_it`` sums the table entries of type ``t`` in network ``i``, ``y_i`` is its measured
    latency (both in reference units) and ``k0`` the global median ratio; ``ridge`` is picked
    from :data:`RIDGES` by leave-one-out error with the one-standard-error rule (the largest
    means one global scale).
    """
    types = sorted({t for f in sums_by_type for t in f})
    x = np.asarray([[f.get(t, 0.0) for t in types] for f in sums_by_type], dtype=np.float64)
    y = np.asarray(measured, dtype=np.float64)
    if len(y) < 1 or np.any(y <= 0) or np.any(x.sum(axis=1) <= 0):
        raise UserError("calibration needs at least one network with positive latencies")
    k0 = float(np.median(y / x.sum(axis=1)))
    w = x / y[:, None]

    def solve(ridge: float, rows: np.ndarray) -> np.ndarray:
        a = w[rows].T @ w[rows] + ridge * np.eye(len(types))
        b = w[rows].T @ np.ones(len(rows)) + ridge * k0
        return np.clip(np.linalg.solve(a, b), k0 / 4, k0 * 4)

    everyone = np.arange(len(y))

    def loo(ridge: float) -> np.ndarray:
        """Per network, its percentage error when predicted by a fit without it."""
        return (
            np.asarray(
                [abs(x[i] @ solve(ridge, everyone[everyone != i]) - y[i]) / y[i] for i in everyone]
            )
            * 100
        )

    if len(y) >= 3:
        # The one-standard-error rule: the strongest regularisation whose leave-one-out error
        # is within one standard error of the best, so that per-type scales are used only
        # when they predict clearly better than the global scale, not when they fit noise.
        errors = {r: loo(r) for r in RIDGES}
        best = min(RIDGES, key=lambda r: float(errors[r].mean()))
        bound = errors[best].mean() + errors[best].std(ddof=1) / math.sqrt(len(y))
        ridge = max(r for r in RIDGES if errors[r].mean() <= bound + 1e-9)
        loo_mape = float(errors[ridge].mean())
    else:  # too few networks to choose: one global scale
        ridge, loo_mape = RIDGES[-1], math.nan
    k = solve(ridge, everyone)
    fitted = x @ k
    return Correction(
        scale=k0,
        type_scales=dict(zip(types, map(float, k), strict=True)),
        ridge=ridge,
        residuals=(y - fitted).tolist(),
        n=len(y),
        mape=float(np.mean(np.abs(fitted - y) / y) * 100),
        loo_mape=loo_mape,
    )


@dataclass(frozen=True)
class Agreement:
    """How predicted latencies agree with measured ones."""

    n: int
    within_10pct: float
    mape: float
    spearman: float
    kendall: float

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


def agreement(predicted: Iterable[float], measured: Iterable[float]) -> Agreement:
    """Share within +-10%, MAPE (%), Spearman and Kendall rank correlations."""
    from scipy.stats import kendalltau, spearmanr

    p = np.asarray(list(predicted), dtype=np.float64)
    m = np.asarray(list(measured), dtype=np.float64)
    err = np.abs(p - m) / m
    rho = float(spearmanr(p, m).statistic) if len(p) > 1 else math.nan
    tau = float(kendalltau(p, m).statistic) if len(p) > 1 else math.nan
    return Agreement(len(p), float(np.mean(err <= 0.10)), float(np.mean(err) * 100), rho, tau)
