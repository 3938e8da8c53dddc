"""Filling and using latency look-up tables: profile, calibrate, measure, check.

Every number lands in the store keyed by the device's identity (:mod:`archsearch.cost.devices`)
with its statistics and provenance. Profiling is idempotent (entries already measured are
skipped) and safe with several writers (the first entry stored wins); a chunk that fails to
measure stores nothing. All timings follow :mod:`archsearch.cost.latency`'s protocol, each
sample paired with a sample of the reference workload.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archsearch.blocks import Shape
from archsearch.build import build, check_block_memory, check_memory
from archsearch.cost.counting import count
from archsearch.cost.devices import Device, Runner
from archsearch.cost.latency import (
    REFERENCE_SHAPE,
    Agreement,
    Correction,
    Item,
    LatencyModel,
    MissingEntries,
    Timing,
    agreement,
    block_signature,
    fit_correction,
    measure_interleaved,
    reference_module,
)
from archsearch.db import DeviceInfo, LatencyEntry, Store, TrialRecord
from archsearch.errors import UserError
from archsearch.spec import Architecture, Block

if TYPE_CHECKING:
    from torch import nn

    from archsearch.spaces import Space

WARMUP, REPEATS = 5, 20  # per block
NET_WARMUP, NET_REPEATS = 3, 20  # per whole network

Progress = Callable[[int, int], None]


def device_info(device: Device) -> DeviceInfo:
    return DeviceInfo(device.key, device.name, device.identity())


def reference_runner(device: Device) -> Runner:
    return device.runner(reference_module(), REFERENCE_SHAPE)


@dataclass(frozen=True)
class ProfileReport:
    """What :func:`profile` did."""

    requested: int
    measured: int
    skipped: int
    seconds: float


def entry_spec(block: Block, shape: Shape, layout: str) -> dict[str, Any]:
    return {**block.to_dict(), "in_shape": list(shape), "layout": layout}


def block_module(block: Block, shape: Shape) -> nn.Module:
    """The block's module for input ``shape``, as a one-input module: a block that reads a
    second stream (a fuse block) gets a fixed random one of the shape its parameters state."""
    module = block.family.build(shape, block.out_channels, block.params)
    context = block.family.context(shape, block.out_channels, block.params)
    if context is None:
        return module
    from archsearch.blocks.layers import WithContext

    return WithContext(module, context)


def space_items(device: Device, space: Space) -> list[Item]:
    """Every table key a member of ``space`` can need on ``device``: each block option at each
    input layout the device distinguishes (a few, such as the stem's other layout, go unused)."""
    return [(b, shape, layout) for b, shape in space.block_options() for layout in device.layouts]


def network_items(device: Device, arch: Architecture) -> list[Item]:
    """The table keys of ``arch`` on ``device``, its layouts from one forward pass."""
    layouts = device.layer_layouts(build(arch), arch.input_shape)
    return [
        (layer.block, layer.in_shape, layout)
        for layer, layout in zip(arch.layers, layouts, strict=True)
    ]


def profile(
    store: Store,
    device: Device,
    items: Sequence[Item],
    *,
    warmup: int = WARMUP,
    repeats: int = REPEATS,
    chunk: int = 16,
    on_progress: Progress | None = None,
) -> ProfileReport:
    """Measures every ``(block, input shape, input layout)`` the device's table lacks,
    ``chunk`` at a time.

    Blocks of a chunk are timed interleaved, each sample beside a reference sample; then each
    runs once more to record the layout of its output; the chunk is stored in one transaction
    once all its blocks are measured.
    """
    start = time.perf_counter()
    have = store.latency_signatures(device.key)
    wanted: dict[str, Item] = {}
    for item in items:
        wanted.setdefault(block_signature(*item), item)
    pending = [(sig, item) for sig, item in wanted.items() if sig not in have]
    info = device_info(device)
    with device.session():
        reference = reference_runner(device)
        for i in range(0, len(pending), chunk):
            part = pending[i : i + chunk]
            for _, (b, s, _) in part:
                check_block_memory(b, s, batch=device.batch)
            runners = [device.runner(block_module(b, s), s, layout) for _, (b, s, layout) in part]
            timings = measure_interleaved(
                runners, device.time_once, warmup=warmup, repeats=repeats, reference=reference
            )
            store.add_latency_entries(
                info,
                [
                    LatencyEntry(
                        sig, b.type, entry_spec(b, s, layout), t.as_dict(), device.layout_of(run())
                    )
                    for (sig, (b, s, layout)), t, run in zip(part, timings, runners, strict=True)
                ],
            )
            if on_progress is not None:
                on_progress(min(i + chunk, len(pending)), len(pending))
    return ProfileReport(
        len(wanted), len(pending), len(wanted) - len(pending), time.perf_counter() - start
    )


def ensure_entries(
    store: Store, device: Device, archs: Sequence[Architecture], **options: Any
) -> ProfileReport:
    """Profiles the blocks of ``archs`` that the table lacks (lazy filling), until the
    predictor can walk every one of them.

    A first pass profiles each network's blocks at the layouts a forward pass of the whole
    network shows; the predictor then walks the layouts the blocks showed when timed alone,
    which can differ (a block that hands on another layout alone than inside the network), so
    later passes profile the entry each walk still lacks. Every pass adds an entry per network
    that lacks one, and a network has at most two per block, so this ends.

    Raises:
        UserError: an entry is still missing after that many passes.
    """
    total = ProfileReport(0, 0, 0, 0.0)
    passes = 2 * max((len(a.layers) for a in archs), default=0) + 1
    for i in range(passes + 1):
        model = load_model(store, device)
        items: list[Item] = []
        for a in archs:
            try:
                model.items(a)
            except MissingEntries as e:
                items += network_items(device, a) if i == 0 else e.missing
        if not items:
            return total
        if i == passes:
            break
        done = profile(store, device, items, **options)
        total = ProfileReport(
            total.requested + done.requested,
            total.measured + done.measured,
            total.skipped + done.skipped,
            total.seconds + done.seconds,
        )
    raise UserError(
        f"device {device.name}: {len(items)} latency table entries are still missing after "
        f"{passes} profiling passes; run `archsearch latency profile --space ... --device "
        f"{device.name}` first"
    )


def load_model(store: Store, device: Device) -> LatencyModel:
    """The device's predictor: its table, its newest correction and nominal reference latency.

    Before any calibration the scales are 1 and the nominal reference latency is the median of
    the reference samples taken while profiling.
    """
    return table_model(store, device.key, device.input_layout)


def table_model(store: Store, key: str, input_layout: str) -> LatencyModel:
    """The predictor of the device stored under ``key`` (see :func:`load_model`), whose
    networks take their input in ``input_layout``."""
    rows = store.latency_table(key)
    entries: dict[Item, float] = {}
    out_layouts: dict[Item, str] = {}
    for spec, rel, _, out_layout in rows:
        block = Block.from_dict({k: v for k, v in spec.items() if k not in ("in_shape", "layout")})
        c, h, w = spec["in_shape"]
        item = (block, (c, h, w), spec["layout"])
        entries[item], out_layouts[item] = rel, out_layout
    fit = store.latest_latency_fit(key)
    if fit is None:  # uncalibrated: the reference speed seen while profiling, scale 1
        ref_ms = statistics.median(r[2] for r in rows) if rows else 1.0
        scale, type_scales = 1.0, {}
    else:
        ref_ms, scale, type_scales = float(fit["ref_ms"]), float(fit["scale"]), fit["type_scales"]
    return LatencyModel(
        key,
        entries,
        out_layouts,
        ref_ms=ref_ms,
        scale=scale,
        type_scales=type_scales or {},
        input_layout=input_layout,
    )


def predictions(store: Store, arch: Architecture) -> list[dict[str, Any]]:
    """The architecture's predicted latency on every device the store has a table of: ms and
    each block's share, or None where the table lacks one of its blocks (``archsearch latency
    profile`` fills it)."""
    out = []
    for device in store.latency_devices():
        if not device["entries"]:
            continue
        layout = "nhwc" if device["identity"].get("channels_last") else "nchw"
        model = table_model(store, str(device["key"]), layout)
        row: dict[str, Any] = {"device": device["key"], "device_name": device["name"]}
        try:
            row["block_ms"] = model.block_ms(arch)
            row["predicted_ms"] = sum(row["block_ms"])
        except MissingEntries:
            row["predicted_ms"] = row["block_ms"] = None
        out.append(row)
    return out


def measure_networks(
    device: Device,
    archs: Sequence[Architecture],
    *,
    warmup: int = NET_WARMUP,
    repeats: int = NET_REPEATS,
    chunk: int = 8,
    on_progress: Progress | None = None,
) -> list[Timing]:
    """Times whole networks, interleaved ``chunk`` at a time, beside the reference."""
    out: list[Timing] = []
    with device.session():
        reference = reference_runner(device)
        for i in range(0, len(archs), chunk):
            part = archs[i : i + chunk]
            for a in part:
                check_memory(a, batch=device.batch)
            runners = [device.runner(build(a), a.input_shape) for a in part]
            out += measure_interleaved(
                runners, device.time_once, warmup=warmup, repeats=repeats, reference=reference
            )
            if on_progress is not None:
                on_progress(len(out), len(archs))
    return out


def calibrate(
    store: Store,
    device: Device,
    archs: Sequence[Architecture],
    *,
    on_progress: Progress | None = None,
) -> Correction:
    """Fits and stores the device's correction on whole networks ``archs``.

    The nominal reference latency stored with the fit is the median of the reference samples
    taken beside these networks.
    """
    ensure_entries(store, device, archs)
    model = load_model(store, device)
    sums = [model.block_sum(a) for a in archs]
    timings = measure_networks(device, archs, on_progress=on_progress)
    correction = fit_correction(
        [model.sums_by_type(a) for a in archs], [t.rel_median for t in timings]
    )
    fitted = LatencyModel(
        model.device_key,
        model.entries,
        model.out_layouts,
        scale=correction.scale,
        type_scales=correction.type_scales,
        input_layout=model.input_layout,
    )
    nominal = statistics.median(t.ref_ms for t in timings)
    info = device_info(device)
    for a, t, s in zip(archs, timings, sums, strict=True):
        store.add_network_latency(
            info,
            TrialRecord(a, count(a), {}),
            t.as_dict(),
            purpose="calibration",
            block_sum=s,
            predicted_ms=fitted.predict(a, ref_ms=t.ref_ms),
        )
    store.add_latency_fit(
        info,
        scale=correction.scale,
        ref_ms=nominal,
        type_scales=correction.type_scales,
        ridge=correction.ridge,
        loo_mape=correction.loo_mape,
        n=correction.n,
        mape=correction.mape,
        residuals=[
            {"digest": a.digest, "residual": r}
            for a, r in zip(archs, correction.residuals, strict=True)
        ],
    )
    return correction


@dataclass(frozen=True)
class CheckRow:
    """One network of a check: its prediction (at the session's reference speed) and timing."""

    digest: str
    macs: int
    block_sum: float
    predicted_ms: float
    nominal_ms: float
    measured_ms: float
    p10_ms: float
    p90_ms: float

    @property
    def error_pct(self) -> float:
        return 100 * (self.predicted_ms - self.measured_ms) / self.measured_ms


@dataclass(frozen=True)
class CheckReport:
    """A check's rows and agreements: at the session's reference speed, and at the nominal one."""

    rows: list[CheckRow]
    session: Agreement
    nominal: Agreement
    session_ref_ms: float
    nominal_ref_ms: float


def check(
    store: Store,
    device: Device,
    archs: Sequence[Architecture],
    *,
    purpose: str = "check",
    on_progress: Progress | None = None,
) -> CheckReport:
    """Measures ``archs`` whole, predicts them, stores both, and compares them.

    The prediction uses the reference latency measured in this same session (the median of
    the reference samples taken beside these networks), so that a change of the machine's
    speed since profiling does not count as a prediction error; the agreement at the nominal
    reference latency is reported too.
    """
    ensure_entries(store, device, archs)
    model = load_model(store, device)
    timings = measure_networks(device, archs, on_progress=on_progress)
    session_ref = statistics.median(t.ref_ms for t in timings)
    info = device_info(device)
    rows = []
    for a, t in zip(archs, timings, strict=True):
        s = model.block_sum(a)
        predicted = model.predict(a, ref_ms=session_ref)
        cost = count(a)
        store.add_network_latency(
            info,
            TrialRecord(a, cost, {}),
            t.as_dict(),
            purpose=purpose,
            block_sum=s,
            predicted_ms=predicted,
        )
        rows.append(
            CheckRow(
                a.digest,
                cost.macs,
                s,
                predicted,
                model.predict(a),
                t.median_ms,
                t.p10_ms,
                t.p90_ms,
            )
        )
    measured = [r.measured_ms for r in rows]
    return CheckReport(
        rows,
        agreement([r.predicted_ms for r in rows], measured),
        agreement([r.nominal_ms for r in rows], measured),
        session_ref,
        model.ref_ms,
    )
