"""What the service's modules share: how it was started, its error type, its bounds."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 1024 * 1024
"""The largest request body (a spec or a run's settings are a few KiB)."""
MAX_PAGE = 1000
"""Rows per page of trials."""


@dataclass
class ServiceSettings:
    """How ``archsearch serve`` was started."""

    db: str | None = None
    host: str = "127.0.0.1"
    token: str | None = None
    public_read: bool = False
    workers: int = 0
    data_root: str | None = None
    """Files a submitted run may name (data, tables, checkpoints) must lie under it."""

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def reads_open(self) -> bool:
        """Reads need no token: bound to loopback, or started with ``--public-read``."""
        return self.loopback or self.public_read


class ServiceError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def finite(value: Any) -> Any:
    """JSON cannot hold NaN or infinity: they become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
