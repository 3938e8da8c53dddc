"""The store: SQLAlchemy models, one module per aggregate behind the :class:`Store` facade,
Alembic migrations (SQLite and PostgreSQL)."""

from archsearch.db.architectures import ArchitectureInfo
from archsearch.db.engine import (
    DEFAULT_URL,
    ENV_VAR,
    VERSION_TABLE,
    display_url,
    owner_alive,
    resolve_url,
    worker_id,
)
from archsearch.db.latency import DeviceInfo, LatencyEntry
from archsearch.db.runs import (
    ACTIVE_STATES,
    FINISHED_STATES,
    Claim,
    Deleted,
    RunConfig,
    RunInfo,
    RunTakenOver,
    StoredTrial,
    TrialRecord,
    is_stale,
)
from archsearch.db.store import Store

__all__ = [
    "ACTIVE_STATES",
    "DEFAULT_URL",
    "ENV_VAR",
    "FINISHED_STATES",
    "VERSION_TABLE",
    "ArchitectureInfo",
    "Claim",
    "Deleted",
    "DeviceInfo",
    "LatencyEntry",
    "RunConfig",
    "RunInfo",
    "RunTakenOver",
    "Store",
    "StoredTrial",
    "TrialRecord",
    "display_url",
    "is_stale",
    "owner_alive",
    "resolve_url",
    "worker_id",
]
