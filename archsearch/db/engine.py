"""The database engine under the :class:`~archsearch.db.Store`: URLs, connections,
transactions, the schema (Alembic) and the refusals users can act on.

``Store(url)`` connects (URL from the argument, else ``ARCHSEARCH_DB``, else
``sqlite:///archsearch.db`` in the working directory), creates the schema on an empty database
with Alembic, and refuses a database at another schema revision until ``archsearch db
upgrade`` (:meth:`StoreBase.upgrade`) migrates it. Writes go through
:meth:`StoreBase.transaction`, which commits on success and rolls back on any exception, so a
failure never leaves a partial batch. SQLite runs in WAL mode with a busy timeout, and write
transactions take the write lock up front (``BEGIN IMMEDIATE``) so that concurrent writers
queue instead of failing.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Engine,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from archsearch.errors import StoreError, first_line
from archsearch.limits import MAX_INT

DEFAULT_URL = "sqlite:///archsearch.db"


ENV_VAR = "ARCHSEARCH_DB"


MIGRATIONS = Path(__file__).parent / "migrations"


VERSION_TABLE = "archsearch_version"


_PG_LOCK_KEY = 7_406_011  # advisory lock serialising schema creation on PostgreSQL


def _fits(key: int) -> bool:
    """Whether ``key`` can be an id (the databases' 32-bit INTEGER); an id out of range is
    simply not found, rather than an overflow error of the driver."""
    return isinstance(key, int) and 0 <= key <= MAX_INT


def resolve_url(url: str | None) -> str:
    """The database URL: the argument, else ``$ARCHSEARCH_DB``, else the default SQLite file.

    ``postgresql://`` and ``postgres://`` select the psycopg (v3) driver.
    """
    raw = url or os.environ.get(ENV_VAR) or DEFAULT_URL
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise StoreError(
            f"--db: {raw!r} is not a database URL; write e.g. sqlite:///archsearch.db or "
            "postgresql://user@host:5432/dbname"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def display_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def worker_id() -> str:
    """``host:pid`` of this process: the owner of the runs it drives, the worker of its trials."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool | None:
    """Whether the process ``owner`` (``host:pid``) lives: known only on its own host (None
    elsewhere, where only its heartbeat tells)."""
    if not owner or ":" not in owner:
        return None
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StoreBase:
    """The engine and sessions every aggregate of the store works through (see
    :class:`archsearch.db.Store`)."""

    def __init__(self, url: str | None = None, *, upgrade: bool = False) -> None:
        self.url = resolve_url(url)
        self.engine = self._create_engine(self.url)
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            bind=self.engine.execution_options(archsearch_write=True), expire_on_commit=False
        )
        self._ensure_schema(upgrade=upgrade)

    def __repr__(self) -> str:
        return f"Store({display_url(self.url)!r})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @staticmethod
    def _create_engine(url: str) -> Engine:
        parsed = make_url(url)
        try:
            if parsed.get_backend_name() == "sqlite":
                db = parsed.database
                if (
                    db and parsed.query.get("uri") == "true"
                ):  # sqlite:///file:PATH?mode=ro&uri=true
                    db = db.removeprefix("file:")
                if db and db != ":memory:" and not _folder_exists(db):
                    raise StoreError(
                        f"--db: the folder of SQLite file {db!r} does not exist; create it or "
                        "give another path"
                    )
                engine = create_engine(url, connect_args={"timeout": 60})
                event.listen(engine, "connect", _sqlite_connect)
                event.listen(engine, "begin", _sqlite_begin)
                return engine
            connect_args = (
                {"connect_timeout": 10} if parsed.get_backend_name() == "postgresql" else {}
            )
            return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        except (ArgumentError, ImportError) as e:
            raise StoreError(f"--db: cannot use {display_url(url)!r}: {e}") from None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read session (rolled back at the end)."""
        with self._wrap_errors(), self._read() as s:
            yield s

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        with self._wrap_errors(), self._write() as s, s.begin():
            yield s

    @contextmanager
    def _wrap_errors(self) -> Iterator[None]:
        """Database refusals the user can act on become one-line :class:`StoreError`s (the
        transaction is rolled back: nothing is half-written)."""
        try:
            yield
        except DBAPIError as e:
            if e.connection_invalidated or _is_connect_error(e):
                raise StoreError(
                    f"cannot reach the database {display_url(self.url)}: "
                    f"{first_line(e.orig)}; check --db or ${ENV_VAR}"
                ) from None
            reason = _refusal(e)
            if reason is not None:
                raise StoreError(
                    f"the database {display_url(self.url)} refused the write: {reason}; nothing "
                    "was changed"
                ) from None
            raise
        except OverflowError as e:  # sqlite3 cannot bind an integer beyond 64 bits
            raise StoreError(
                f"a value is out of the database's range ({e}); nothing was changed"
            ) from None

    def _alembic(self, conn: Connection) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        return cfg

    def head_revision(self) -> str:
        head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
        assert head is not None
        return head

    def current_revision(self) -> str | None:
        with self._wrap_errors(), self.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return ctx.get_current_revision()

    def _ensure_schema(self, *, upgrade: bool) -> None:
        try:
            # The common case, a current schema, needs no lock (read-only commands stay
            # concurrent with a running search); creating or migrating takes the write lock.
            if self.current_revision() == self.head_revision():
                return
            with (
                self._wrap_errors(),
                self.engine.execution_options(archsearch_write=True).connect() as conn,
                conn.begin(),
            ):
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
                current, head = ctx.get_current_revision(), self.head_revision()
                if current == head:
                    return
                if current is None and inspect(conn).has_table("runs"):
                    raise StoreError(
                        f"database {display_url(self.url)} has a 'runs' table but no archsearch "
                        "schema version; use an empty database or another --db"
                    )
                if current is not None and not upgrade:
                    raise StoreError(
                        f"database {display_url(self.url)} is at schema revision {current}, this "
                        f"archsearch needs {head}; run: archsearch db upgrade --db <url>"
                    )
                command.upgrade(self._alembic(conn), "head")
        except SQLAlchemyError as e:
            raise StoreError(
                f"cannot use the database {display_url(self.url)}: {first_line(e)}; check --db "
                f"or ${ENV_VAR}"
            ) from None

    def upgrade(self) -> tuple[str | None, str]:
        """Migrates the schema to the newest revision; returns (before, after)."""
        before = self.current_revision()
        self._ensure_schema(upgrade=True)
        return before, self.head_revision()


def _rowcount(result: Any) -> int:
    """Rows an UPDATE matched (a ``CursorResult``'s count; the ORM types it as ``Result``)."""
    return int(result.rowcount or 0)


def _to_db(value: float) -> float | None:
    v = float(value)
    return None if math.isnan(v) else v


def _from_db(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _sqlite_connect(dbapi_conn: Any, record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN, so that writers can ask for IMMEDIATE.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("archsearch_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _folder_exists(path: str) -> bool:
    try:
        return Path(path).resolve().parent.is_dir()
    except (OSError, ValueError):  # a name too long, an embedded NUL
        return False


def _refusal(e: DBAPIError) -> str | None:
    """Why the database refused a statement, when the user can act on it (a read-only or
    full database, a value out of range), else None (a bug: re-raised)."""
    text_ = str(e.orig).lower()
    for needle, reason in (
        ("readonly database", "the SQLite file (or its folder) is read-only; use a writable --db"),
        ("read-only", "the database is read-only; use a writable --db"),
        ("disk is full", "the disk is full; free space and retry"),
        ("disk i/o error", "a disk I/O error; check the disk and the file"),
        ("out of range", "a value is out of the column's range"),
        ("too long", "a value is too long for its column"),
        ("nul", "a text value contains a NUL character"),
    ):
        if needle in text_:
            return f"{reason} ({first_line(e.orig)[:120]})"
    return None


def _is_connect_error(e: DBAPIError) -> bool:
    text_ = str(e.orig).lower()
    return any(
        s in text_
        for s in (
            "connection refused",
            "could not connect",
            "connection failed",
            "timeout expired",
            "unable to open database",
            "name or service not known",
            "does not exist",
        )
    )
