"""Latency tables in the store: devices, entries per block signature, correction fits and
whole-network measurements."""

from __future__ import annotations

import math
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from archsearch.db.architectures import ArchitecturesStore
from archsearch.db.models import (
    ArchitectureModel,
    DeviceModel,
    LatencyEntryModel,
    LatencyFitModel,
    NetworkLatencyModel,
    utcnow,
)
from archsearch.db.runs import TrialRecord


@dataclass(frozen=True)
class DeviceInfo:
    """What the store records of a measuring device: its identity hash, name and identity."""

    key: str
    name: str
    identity: dict[str, Any]


@dataclass(frozen=True)
class LatencyEntry:
    """One look-up-table entry to store: a block signature and its timing statistics."""

    signature: str
    block_type: str
    spec: dict[str, Any]
    timing: Mapping[str, float | int]
    out_layout: str


class LatencyStore(ArchitecturesStore):
    """Latency tables per device (the first entry stored wins)."""

    def _insert_ignore(
        self, s: Session, model: Any, rows: list[dict[str, Any]], keys: list[str]
    ) -> None:
        """INSERT rows, skipping those whose unique ``keys`` exist (first writer wins)."""
        if not rows:
            return
        if self.dialect in ("sqlite", "postgresql"):
            from sqlalchemy.dialects import postgresql, sqlite

            insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
            s.execute(insert(model).values(rows).on_conflict_do_nothing(index_elements=keys))
            return
        for row in rows:  # other backends: one savepoint per row
            try:
                with s.begin_nested():
                    s.add(model(**row))
            except IntegrityError:
                pass

    def _device_id(self, s: Session, device: DeviceInfo) -> int:
        self._insert_ignore(
            s,
            DeviceModel,
            [
                {
                    "key": device.key,
                    "name": device.name,
                    "identity": device.identity,
                    "created_at": utcnow(),
                }
            ],
            ["key"],
        )
        found = s.scalar(select(DeviceModel.id).where(DeviceModel.key == device.key))
        assert found is not None
        return found

    def latency_signatures(self, device_key: str) -> set[str]:
        """The block signatures in the device's look-up table."""
        with self.session() as s:
            return set(
                s.scalars(
                    select(LatencyEntryModel.signature)
                    .join(DeviceModel, LatencyEntryModel.device_id == DeviceModel.id)
                    .where(DeviceModel.key == device_key)
                )
            )

    def latency_table(self, device_key: str) -> list[tuple[dict[str, Any], float, float, str]]:
        """The device's table as (block spec with ``in_shape`` and ``layout``, reference units,
        reference ms, output layout) rows."""
        with self.session() as s:
            rows = s.execute(
                select(
                    LatencyEntryModel.spec,
                    LatencyEntryModel.rel_median,
                    LatencyEntryModel.ref_ms,
                    LatencyEntryModel.out_layout,
                )
                .join(DeviceModel, LatencyEntryModel.device_id == DeviceModel.id)
                .where(DeviceModel.key == device_key)
            )
            return [(spec, rel, ref, out) for spec, rel, ref, out in rows]

    def add_latency_entries(self, device: DeviceInfo, entries: Sequence[LatencyEntry]) -> None:
        """Stores look-up-table entries; an entry already present is kept (idempotent)."""
        host = socket.gethostname()
        with self.transaction() as s:
            device_id = self._device_id(s, device)
            rows = [
                {
                    "device_id": device_id,
                    "signature": e.signature,
                    "block_type": e.block_type,
                    "spec": e.spec,
                    "out_layout": e.out_layout,
                    **{k: v for k, v in e.timing.items()},
                    "measured_at": utcnow(),
                    "host": host,
                }
                for e in entries
            ]
            self._insert_ignore(s, LatencyEntryModel, rows, ["device_id", "signature"])

    def latency_entries(self, device_key: str) -> list[dict[str, Any]]:
        """Every entry of a device's table with its statistics and provenance."""
        with self.session() as s:
            q = (
                select(LatencyEntryModel)
                .join(DeviceModel, LatencyEntryModel.device_id == DeviceModel.id)
                .where(DeviceModel.key == device_key)
                .order_by(LatencyEntryModel.id)
            )
            cols = [c.name for c in LatencyEntryModel.__table__.columns]
            return [{c: getattr(e, c) for c in cols} for e in s.scalars(q)]

    def add_latency_fit(
        self,
        device: DeviceInfo,
        *,
        scale: float,
        ref_ms: float,
        type_scales: dict[str, float],
        ridge: float,
        loo_mape: float,
        n: int,
        mape: float,
        residuals: list[dict[str, Any]],
    ) -> None:
        """Stores a fitted correction (see :func:`archsearch.cost.latency.fit_correction`)."""
        with self.transaction() as s:
            s.add(
                LatencyFitModel(
                    device_id=self._device_id(s, device),
                    scale=scale,
                    ref_ms=ref_ms,
                    type_scales=type_scales,
                    ridge=ridge,
                    loo_mape=None if math.isnan(loo_mape) else loo_mape,
                    n=n,
                    mape=mape,
                    residuals=residuals,
                )
            )

    def latest_latency_fit(self, device_key: str) -> dict[str, Any] | None:
        """The newest fitted correction of a device, or None."""
        with self.session() as s:
            fit = s.scalars(
                select(LatencyFitModel)
                .join(DeviceModel, LatencyFitModel.device_id == DeviceModel.id)
                .where(DeviceModel.key == device_key)
                .order_by(LatencyFitModel.id.desc())
                .limit(1)
            ).first()
            if fit is None:
                return None
            cols = [c.name for c in LatencyFitModel.__table__.columns]
            return {c: getattr(fit, c) for c in cols}

    def add_network_latency(
        self,
        device: DeviceInfo,
        record: TrialRecord,
        timing: Mapping[str, float | int],
        *,
        purpose: str,
        block_sum: float | None,
        predicted_ms: float | None,
    ) -> None:
        """Stores one whole-network measurement (the architecture is upserted by digest)."""
        with self.transaction() as s:
            ids = self._upsert_architectures(s, [(record.arch, record.cost)])
            s.add(
                NetworkLatencyModel(
                    device_id=self._device_id(s, device),
                    architecture_id=ids[record.arch.digest],
                    purpose=purpose,
                    block_sum=block_sum,
                    predicted_ms=predicted_ms,
                    host=socket.gethostname(),
                    **dict(timing),
                )
            )

    def latency_devices(self) -> list[dict[str, Any]]:
        """Every device the store knows: key, name, identity, number of table entries and
        whole-network measurements, newest correction's error (``mape``), if any."""
        with self.session() as s:
            devices = s.scalars(select(DeviceModel).order_by(DeviceModel.id)).all()
            out = []
            for d in devices:
                entries = s.scalar(select(func.count()).where(LatencyEntryModel.device_id == d.id))
                networks = s.scalar(
                    select(func.count()).where(NetworkLatencyModel.device_id == d.id)
                )
                out.append(
                    {
                        "key": d.key,
                        "name": d.name,
                        "identity": d.identity,
                        "entries": entries,
                        "networks": networks,
                        "created_at": d.created_at,
                    }
                )
        for row in out:
            fit = self.latest_latency_fit(str(row["key"]))
            row["fit_mape"] = None if fit is None else fit["mape"]
        return out

    def architecture_latencies(self, digest: str) -> list[dict[str, Any]]:
        """Every whole-network latency measured for the architecture ``digest``, by device."""
        with self.session() as s:
            q = (
                select(NetworkLatencyModel, DeviceModel.key, DeviceModel.name)
                .join(DeviceModel, NetworkLatencyModel.device_id == DeviceModel.id)
                .join(
                    ArchitectureModel, NetworkLatencyModel.architecture_id == ArchitectureModel.id
                )
                .where(ArchitectureModel.digest == digest)
                .order_by(NetworkLatencyModel.id)
            )
            return [
                {
                    "device": key,
                    "device_name": name,
                    "purpose": m.purpose,
                    "median_ms": m.median_ms,
                    "predicted_ms": m.predicted_ms,
                    "measured_at": m.measured_at,
                }
                for m, key, name in s.execute(q)
            ]

    def network_latencies(
        self, device_key: str, *, purpose: str | None = None
    ) -> list[dict[str, Any]]:
        """Whole-network measurements of a device, oldest first, with each digest."""
        with self.session() as s:
            q = (
                select(NetworkLatencyModel, ArchitectureModel.digest, ArchitectureModel.macs)
                .join(DeviceModel, NetworkLatencyModel.device_id == DeviceModel.id)
                .join(
                    ArchitectureModel, NetworkLatencyModel.architecture_id == ArchitectureModel.id
                )
                .where(DeviceModel.key == device_key)
                .order_by(NetworkLatencyModel.id)
            )
            if purpose is not None:
                q = q.where(NetworkLatencyModel.purpose == purpose)
            cols = [c.name for c in NetworkLatencyModel.__table__.columns]
            return [
                {"digest": d, "macs": macs, **{c: getattr(m, c) for c in cols}}
                for m, d, macs in s.execute(q)
            ]
