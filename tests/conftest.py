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

# Reproducible property tests in CI; HYPOTHESIS_PROFILE=explore draws new examples.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None, max_examples=500)
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
