"""The latency protocol's statistics, signatures, the predictor and the correction fit."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from archsearch.cost.latency import (
    RIDGES,
    Item,
    LatencyModel,
    MissingEntries,
    Timing,
    agreement,
    block_signature,
    fit_correction,
    measure_interleaved,
    parse_latency,
    tensor_layout,
)
from archsearch.errors import UserError
from archsearch.spaces import Space
from archsearch.spec import Architecture, Block


def test_timing_statistics() -> None:
    samples = [float(v) for v in range(1, 11)]  # 1..10 ms
    t = Timing.from_samples(samples, warmup=3, ref_ms=[2.0] * 10)
    assert t.median_ms == 5.5
    assert t.p10_ms == pytest.approx(np.percentile(samples, 10))
    assert t.p90_ms == pytest.approx(np.percentile(samples, 90))
    assert t.iqr_ms == pytest.approx(np.percentile(samples, 75) - np.percentile(samples, 25))
    assert t.mean_ms == 5.5 and t.repeats == 10 and t.warmup == 3
    assert t.rel_median == 2.75 and t.ref_ms == 2.0
    outlier = Timing.from_samples([*samples[:9], 1000.0], warmup=0)
    assert outlier.median_ms == 5.5 and outlier.mean_ms > 100  # the median ignores the outlier
    assert math.isnan(outlier.rel_median)
    with pytest.raises(ValueError):
        Timing.from_samples([], warmup=0)


def test_interleaved_order_warmup_and_reference_pairing() -> None:
    calls: list[str] = []

    def runner(name: str):  # type: ignore[no-untyped-def]
        return lambda: calls.append(name)

    a, b, ref = runner("a"), runner("b"), runner("ref")
    clock = itertools.count(1)

    def time_once(run) -> float:  # type: ignore[no-untyped-def]
        run()
        return float(next(clock))

    timings = measure_interleaved([a, b], time_once, warmup=2, repeats=3, reference=ref)
    assert calls[:6] == ["a", "a", "b", "b", "ref", "ref"]  # warm-up, untimed
    assert calls[6:] == ["ref", "a", "ref", "b"] * 3  # round-robin, each beside a reference
    # samples: a gets 2, 6, 10 with references 1, 5, 9; b gets 4, 8, 12 with 3, 7, 11
    assert timings[0].median_ms == 6 and timings[0].ref_ms == 5
    assert timings[0].rel_median == pytest.approx(np.median([2 / 1, 6 / 5, 10 / 9]))
    assert timings[1].median_ms == 8 and timings[1].repeats == 3 and timings[1].warmup == 2
    with pytest.raises(UserError):
        measure_interleaved([a], time_once, warmup=0, repeats=0)


@pytest.mark.parametrize(
    ("text", "ms"), [("40ms", 40.0), ("0.04s", 40.0), ("1500us", 1.5), (" 2.5 MS", 2.5)]
)
def test_parse_latency(text: str, ms: float) -> None:
    assert parse_latency(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["40", "fast", "-3ms", "0ms", "nanms", "1GFLOP"])
def test_parse_latency_errors(text: str) -> None:
    with pytest.raises(UserError, match="--latency: .* is not a latency; write e.g. 40ms"):
        parse_latency(text)


def test_block_signatures() -> None:
    b = Block("convnext", 32, {"kernel": 3})
    assert block_signature(b, (32, 8, 8)) == block_signature(
        Block("convnext", 32, {"kernel": 3}), (32, 8, 8)
    )
    assert block_signature(b, (32, 8, 8)) != block_signature(b, (32, 16, 16))
    assert block_signature(b, (32, 8, 8)) != block_signature(Block("convnext", 32), (32, 8, 8))
    assert len(block_signature(b, (32, 8, 8))) == 64
    assert block_signature(b, (32, 8, 8), "nchw") == block_signature(b, (32, 8, 8))
    assert block_signature(b, (32, 8, 8), "nhwc") != block_signature(b, (32, 8, 8))


def test_tensor_layout() -> None:
    x = torch.randn(1, 8, 4, 4)
    assert tensor_layout(x) == "nchw"
    assert tensor_layout(x.contiguous(memory_format=torch.channels_last)) == "nhwc"
    assert tensor_layout(x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)) == "nhwc"
    assert tensor_layout(torch.randn(1, 10)) == "nchw"


def chain(arch: Architecture, handed_on: str) -> tuple[list[Item], dict[Item, str]]:
    """The keys of ``arch`` when the stem gets NCHW and every block hands on ``handed_on``."""
    items: list[Item] = []
    layout = "nchw"
    for layer in arch.layers:
        items.append((layer.block, layer.in_shape, layout))
        layout = handed_on
    return items, dict.fromkeys(items, handed_on)


def test_predictor(hybrid: Space) -> None:
    arch = hybrid.sample(seed=3)
    items, outs = chain(arch, "nhwc")
    entries = {item: 0.1 * (i + 1) for i, item in enumerate(dict.fromkeys(items))}
    # The same blocks at the other layout, which the walk must not use.
    decoys = {(b, s, "nchw"): 100.0 for b, s, _ in items[1:]}
    model = LatencyModel(
        "dev",
        {**decoys, **entries},
        {**dict.fromkeys(decoys, "nchw"), **outs},
        ref_ms=2.0,
        scale=1.5,
    )
    assert model.items(arch) == items
    expected = sum(entries[item] for item in items)
    assert model.block_sum(arch) == pytest.approx(expected)
    assert model.predict(arch) == pytest.approx(1.5 * expected * 2.0)
    assert model.predict(arch, ref_ms=4.0) == pytest.approx(1.5 * expected * 4.0)
    # A network fed channels-last needs the stem's channels-last entry.
    with pytest.raises(MissingEntries) as e:
        LatencyModel("dev", entries, outs, input_layout="nhwc").predict(arch)
    assert e.value.missing == [(*items[0][:2], "nhwc")]
    del entries[items[-1]]  # the head
    partial = LatencyModel("dev", entries, outs, ref_ms=2.0, scale=1.5)
    with pytest.raises(MissingEntries) as e:
        partial.predict(arch)
    assert e.value.missing == [items[-1]]
    with pytest.raises(MissingEntries):
        partial.block_sum(arch)


def test_fit_correction_recovers_per_type_scales() -> None:
    rng = np.random.default_rng(0)
    truth = {"convnext": 0.8, "mhsa": 1.2, "mbconv": 0.5}
    sums = [{t: float(rng.uniform(1, 10)) for t in truth} for _ in range(12)]
    measured = [sum(truth[t] * v for t, v in f.items()) for f in sums]
    fit = fit_correction(sums, measured)
    assert fit.ridge < 1  # exact data: leave-one-out prefers little regularisation
    for t, k in truth.items():
        assert fit.type_scales[t] == pytest.approx(k, rel=0.02)
    assert fit.mape < 1 and fit.loo_mape < 2 and fit.n == 12


def test_fit_correction_falls_back_to_one_global_scale() -> None:
    # Noise unrelated to block types: leave-one-out picks the global scale (largest ridge).
    sums = [
        {"a": 10.0, "b": 5.0},
        {"a": 20.0, "b": 1.0},
        {"a": 5.0, "b": 20.0},
        {"a": 7.0, "b": 7.0},
    ]
    measured = [12.0, 16.5, 20.0, 11.0]
    fit = fit_correction(sums, measured)
    assert fit.scale == pytest.approx(np.median([12 / 15, 16.5 / 21, 20 / 25, 11 / 14]))
    two = fit_correction(sums[:2], measured[:2])  # too few to choose: global
    assert two.type_scales == pytest.approx({"a": two.scale, "b": two.scale})
    assert math.isnan(two.loo_mape)
    with pytest.raises(UserError, match="calibration needs"):
        fit_correction([], [])


def test_fit_correction_one_standard_error_rule() -> None:
    # Per-type scales within 5% of each other, 10% measurement noise, as many types as a real
    # space and few networks: the lowest leave-one-out error is at a small ridge (0.1 on these
    # draws) that fits the noise; the rule keeps the global scale, whose error is within one
    # standard error of it.
    rng = np.random.default_rng(11)
    types = [f"t{i}" for i in range(12)]
    truth = {t: 0.7 * float(rng.normal(1, 0.05)) for t in types}
    sums = [{t: float(rng.uniform(0, 5)) for t in types} for _ in range(15)]
    measured = [sum(truth[t] * v for t, v in f.items()) * rng.normal(1, 0.1) for f in sums]
    fit = fit_correction(sums, measured)
    assert fit.ridge == max(RIDGES)
    assert all(k == pytest.approx(fit.scale, rel=1e-3) for k in fit.type_scales.values())
    assert fit.scale == pytest.approx(0.7, rel=0.1)


def test_predictor_applies_type_scales(hybrid: Space) -> None:
    arch = hybrid.sample(seed=4)
    items, outs = chain(arch, "nchw")
    entries = dict.fromkeys(items, 1.0)
    model = LatencyModel("dev", entries, outs, ref_ms=1.0, scale=0.5, type_scales={"head": 2.0})
    n = len(arch.layers)
    assert model.predict(arch) == pytest.approx(0.5 * (n - 1) + 2.0)
    assert model.sums_by_type(arch)["head"] == 1.0


def test_agreement() -> None:
    a = agreement([10.0, 21.0, 35.0, 40.0], [10.0, 20.0, 30.0, 50.0])
    assert a.n == 4 and a.within_10pct == 0.5
    assert a.mape == pytest.approx((0 + 5 + 100 / 6 + 20) / 4)
    assert a.spearman == pytest.approx(1.0) and a.kendall == pytest.approx(1.0)
