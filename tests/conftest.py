"""Shared fixtures: the hybrid space, store URLs on SQLite and on the real PostgreSQL.

PostgreSQL tests use ``$ARCHSEARCH_TEST_POSTGRES`` (default
``postgresql://root@127.0.0.1:5432/postgres``) to create a fresh database per test and drop
it afterwards; they skip, saying why, when that server cannot be reached.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from archsearch.spaces import Space, load_space

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core: each worker (and each archsearch it starts as a
    # subprocess) gets one intra-op thread, or torch's default of one thread per core makes
    # the workers' OpenMP threads fight for the cores (the suite took 1.8x as long).
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

# Reproducible property tests in CI; HYPOTHESIS_PROFILE=explore draws new examples.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None, max_examples=500)
# `make test-fast`: fewer examples per property (the developers' lane, under a minute).
settings.register_profile(
    "fast",
    derandomize=True,
    deadline=None,
    max_examples=15,
    suppress_health_check=[HealthCheck.too_slow],
)
# The fuzz suite's long run: `pytest tests/fuzz --hypothesis-profile fuzz` (300 examples per
# parser instead of the default run's 10).
settings.register_profile(
    "fuzz", deadline=None, max_examples=300, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PG_ADMIN_URL = os.environ.get(
    "ARCHSEARCH_TEST_POSTGRES", "postgresql+psycopg://root@127.0.0.1:5432/postgres"
)
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def hybrid() -> Space:
    return load_space("hybrid")


def _pg_admin():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    return create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )


_pg_reason: list[str] = []


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None (checked once per session)."""
    if not _pg_reason:
        try:
            with _pg_admin().connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            _pg_reason.append("")
        except Exception as e:
            _pg_reason.append(f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {e}".splitlines()[0])
    return _pg_reason[0] or None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    name = f"archsearch_test_{uuid.uuid4().hex[:12]}"
    engine = _pg_admin()
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from sqlalchemy import create_engine

        create_engine(url).dispose()
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'archsearch.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archsearch.db'}"
    return str(request.getfixturevalue("pg_url"))


OP_SCORE = {
    "none": 0.0,
    "skip_connect": 1.0,
    "nor_conv_1x1": 2.0,
    "nor_conv_3x3": 3.0,
    "avg_pool_3x3": 0.5,
}


def synthetic_nb201_row(ops: dict[str, str]) -> dict[str, float]:
    """Made-up scores of a NAS-Bench-201 cell: accuracy grows with the convolutions (node 3's
    inputs count double), latency with their cost; deterministic and cheap."""
    acc = 80.0 + sum(
        OP_SCORE[op] * (2.0 if name.startswith("e3") else 1.0) for name, op in ops.items()
    )
    lat = 1.0 + sum({"nor_conv_3x3": 2.0, "nor_conv_1x1": 0.5}.get(op, 0.1) for op in ops.values())
    return {"acc_test": round(acc, 3), "lat_ms_dev": round(lat, 3)}


@pytest.fixture(scope="session")
def nb201_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV like NAS-Bench-201's, for all 15,625 cells, with made-up columns."""
    import csv
    import itertools

    from archsearch.blocks.cells import EDGE_PARAMS, OPS
    from archsearch.spaces.nb201 import format_arch_str

    path = tmp_path_factory.mktemp("tables") / "nb201_synthetic.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["idx", "arch_str", "acc_test", "lat_ms_dev", "note"])
        for i, combo in enumerate(itertools.product(OPS, repeat=len(EDGE_PARAMS))):
            ops = dict(zip(EDGE_PARAMS, combo, strict=True))
            row = synthetic_nb201_row(ops)
            w.writerow([i, format_arch_str(ops), row["acc_test"], row["lat_ms_dev"], "x"])
    return path
