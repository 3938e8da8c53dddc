"""The store: SQLAlchemy models, Alembic migrations, and Pareto queries (SQLite/PostgreSQL)."""

from archsearch.db.store import (
    DEFAULT_URL,
    ENV_VAR,
    ArchitectureInfo,
    DeviceInfo,
    LatencyEntry,
    RunConfig,
    RunInfo,
    Store,
    StoredTrial,
    TrialRecord,
    display_url,
    resolve_url,
    worker_id,
)

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "ArchitectureInfo",
    "DeviceInfo",
    "LatencyEntry",
    "RunConfig",
    "RunInfo",
    "Store",
    "StoredTrial",
    "TrialRecord",
    "display_url",
    "resolve_url",
    "worker_id",
]
