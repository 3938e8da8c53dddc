"""Predicted latency on a device, from its look-up table in the store.

One evaluator is registered per device, named after its metric: ``latency@cpu``,
``latency@cuda``, ``latency@onnxruntime``. It predicts with the device's table and newest
correction (:mod:`archsearch.cost.latency`), at the nominal reference speed; blocks missing
from the table are profiled on the spot and stored (lazy filling), so the first candidates of
a search in an unprofiled space are slow. Options are the device's (threads, batch, ...).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from archsearch.errors import UserError
from archsearch.evaluators.base import Evaluator, Metric
from archsearch.spec import Architecture

if TYPE_CHECKING:
    from archsearch.cost.devices import Device
    from archsearch.cost.latency import LatencyModel
    from archsearch.db import Store


class Latency(Evaluator):
    """Predicted latency (ms) of architectures on ``device_name``; see the module docstring."""

    name: ClassVar[str]
    device_name: ClassVar[str]
    cheap = True

    def __init__(self, **device_options: Any) -> None:
        self.device_options = device_options
        self._device: Device | None = None
        self._store: Store | None = None
        self._model: LatencyModel | None = None

    @property
    def device(self) -> Device:
        if self._device is None:
            from archsearch.cost.devices import create_device

            self._device = create_device(self.device_name, **self.device_options)
        return self._device

    def bind(self, store: Store) -> None:
        from archsearch.profiling import load_model

        self._store = store
        self._model = load_model(store, self.device)

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        from archsearch.cost.latency import MissingEntries
        from archsearch.profiling import ensure_entries, load_model

        if self._store is None or self._model is None:
            raise UserError(f"{self.name}: no database bound; latency needs the store's table")
        out = []
        for arch in archs:
            try:
                value = self._model.predict(arch)
            except MissingEntries:
                ensure_entries(self._store, self.device, [arch])
                self._model = load_model(self._store, self.device)
                value = self._model.predict(arch)
            out.append({self.name: value})
        return out

    def config(self) -> dict[str, object]:
        return dict(self.device_options)


@functools.cache
def latency_evaluator(device: str) -> type[Latency]:
    """The evaluator class of ``device``'s latency metric, ``latency@<device>`` (one class per
    device, created on first use)."""
    metric = f"latency@{device}"
    return type(
        f"Latency_{device}",
        (Latency,),
        {
            "name": metric,
            "device_name": device,
            "metrics": (Metric(metric, "min", f"predicted latency (ms) on {device}"),),
            "__doc__": f"Predicted latency (ms) on device {device!r}.",
        },
    )
