"""The Store: every run, architecture, trial and score, on SQLite or PostgreSQL.

``Store(url)`` connects (URL from the argument, else ``ARCHSEARCH_DB``, else
``sqlite:///archsearch.db`` in the working directory), creates the schema on an empty database
with Alembic, and refuses a database at another schema revision until ``archsearch db
upgrade`` (:meth:`Store.upgrade`) migrates it.

Writes go through :meth:`Store.transaction`, which commits on success and rolls back on any
exception, so a failure never leaves a partial batch. SQLite runs in WAL mode with a busy
timeout, and write transactions take the write lock up front (``BEGIN IMMEDIATE``) so that
concurrent writers queue instead of failing; PostgreSQL serialises trial numbering per run with
a row lock.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Engine,
    and_,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased, sessionmaker

from archsearch.blocks import Cost
from archsearch.cost.metrics import COST_METRICS
from archsearch.db.models import (
    ArchitectureModel,
    DeviceModel,
    LatencyEntryModel,
    LatencyFitModel,
    NetworkLatencyModel,
    RunModel,
    ScoreModel,
    SupernetModel,
    TrialIntermediateModel,
    TrialModel,
    utcnow,
)
from archsearch.errors import StoreError, UserError, first_line
from archsearch.expr import Expr
from archsearch.limits import MAX_INT
from archsearch.pareto import pareto_front_mask, to_minimisation
from archsearch.spec import Architecture

DEFAULT_URL = "sqlite:///archsearch.db"
ENV_VAR = "ARCHSEARCH_DB"
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "archsearch_version"
_PG_LOCK_KEY = 7_406_011  # advisory lock serialising schema creation on PostgreSQL
COST_NAMES = tuple(m.name for m in COST_METRICS)


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


@dataclass(frozen=True)
class RunConfig:
    """Everything a run is started with; stored, and enough to resume it."""

    space: str
    space_yaml: str
    strategy: str
    strategy_config: dict[str, Any]
    objectives: list[str]
    evaluators: dict[str, dict[str, Any]]
    constraints: list[str] = field(default_factory=list)
    budget_macs: int | None = None
    budget_params: int | None = None
    seed: int = 0
    n_trials: int | None = None
    time_limit: float | None = None
    batch_size: int = 32


@dataclass(frozen=True)
class RunInfo:
    """A stored run with its trial counts."""

    id: int
    config: RunConfig
    status: str
    created_at: datetime
    finished_at: datetime | None
    host: str
    version: str
    error: str | None
    n_complete: int = 0
    n_failed: int = 0
    n_pruned: int = 0
    n_active: int = 0
    """Trials queued or being evaluated (``waiting`` or ``running``)."""
    owner: str | None = None
    heartbeat_at: datetime | None = None
    sweep: str | None = None
    sweep_point: dict[str, Any] | None = None

    @property
    def n_finished(self) -> int:
        """Trials that count towards the run's ``n_trials``: complete, failed or pruned."""
        return self.n_complete + self.n_failed + self.n_pruned


@dataclass(frozen=True)
class TrialRecord:
    """One evaluated candidate to store."""

    arch: Architecture
    cost: Cost
    values: Mapping[str, float]
    state: str = "complete"
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker: str | None = None


@dataclass(frozen=True)
class StoredTrial:
    """A trial read back from the store (NaN where a score was not a number)."""

    number: int
    digest: str
    spec: str
    state: str
    cost: Cost
    values: dict[str, float]


@dataclass(frozen=True)
class ArchitectureInfo:
    """One architecture with its costs and every trial that evaluated it."""

    digest: str
    spec: str
    cost: Cost
    trials: list[dict[str, Any]]


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


class RunTakenOver(UserError):
    """Another process has claimed the run (``archsearch run --resume ID --takeover``); the
    process that drove it stops without writing to it again."""

    def __init__(self, run_id: int, owner: str | None) -> None:
        self.run_id = run_id
        self.owner = owner
        super().__init__(
            f"run {run_id} was taken over by {owner or 'another process'}; this process stops "
            "(the trials it finished before are kept)"
        )


def is_stale(run: RunInfo, stale_after: float) -> bool:
    """True for a run marked ``running`` whose owner is gone: a dead process on this host, or
    elsewhere a heartbeat older than ``stale_after`` seconds (a crash, ``kill -9``, a lost
    machine). ``archsearch run --resume`` takes such a run over."""
    if run.status != "running":
        return False
    alive = owner_alive(run.owner)
    if alive is not None:
        return not alive
    if run.heartbeat_at is None:
        return True
    return (utcnow() - run.heartbeat_at).total_seconds() > stale_after


@dataclass(frozen=True)
class Deleted:
    """What :meth:`Store.delete_run` removed (and the architectures it kept)."""

    trials: int
    scores: int
    architectures_kept: int


FINISHED_STATES = ("complete", "failed", "pruned")
ACTIVE_STATES = ("waiting", "running")


@dataclass(frozen=True)
class Claim:
    """What :meth:`Store.claim_run` found when it took a run over."""

    previous_owner: str | None
    previous_status: str
    requeued: int
    """Trials left ``waiting``/``running`` by the previous owner, put back in the queue."""


class Store:
    """Access to an archsearch database.

    Args:
        url: A SQLAlchemy URL; None uses ``$ARCHSEARCH_DB`` or ``sqlite:///archsearch.db``.
        upgrade: Migrate an older schema to the current revision instead of refusing it.

    Raises:
        StoreError: the database cannot be reached, or is at another schema revision.
    """

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

    # -- connection ----------------------------------------------------------------------

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

    # -- schema --------------------------------------------------------------------------

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

    # -- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        config: RunConfig,
        *,
        status: str = "running",
        owner: str | None = None,
        sweep: str | None = None,
        sweep_point: dict[str, Any] | None = None,
    ) -> int:
        """Stores a new run (``running``, owned by this process; or ``queued``, unowned, for a
        sweep's runs not started yet); returns its id."""
        from archsearch._version import __version__

        with self.transaction() as s:
            run = RunModel(
                **config.__dict__,
                status=status,
                host=socket.gethostname(),
                version=__version__,
                owner=owner if owner is not None or status != "running" else worker_id(),
                heartbeat_at=utcnow() if status == "running" else None,
                sweep=sweep,
                sweep_point=sweep_point,
            )
            s.add(run)
            s.flush()
            return run.id

    def claim_run(
        self, run_id: int, *, owner: str, stale_after: float, force: bool = False
    ) -> Claim:
        """Makes ``owner`` the process driving run ``run_id`` and marks it ``running``.

        A run marked ``running`` whose owner still lives (same host: its pid; elsewhere: a
        heartbeat newer than ``stale_after`` seconds) is refused unless ``force``. Trials the
        previous owner left ``waiting`` or ``running`` are put back to ``waiting``: its workers
        died with it, and the new owner evaluates them again.

        Raises:
            StoreError: no such run.
            UserError: the run is being driven by a live process.
        """
        with self.transaction() as s:
            run = s.execute(
                select(RunModel).where(RunModel.id == run_id).with_for_update()
            ).scalar_one_or_none()
            if run is None:
                raise self._no_run(run_id)
            previous, status = run.owner, run.status
            if status == "running" and previous not in (None, owner) and not force:
                alive = owner_alive(previous)
                age = (
                    None
                    if run.heartbeat_at is None
                    else (utcnow() - run.heartbeat_at).total_seconds()
                )
                if alive or (alive is None and age is not None and age < stale_after):
                    seen = "" if age is None else f" (last heartbeat {age:.0f}s ago)"
                    raise UserError(
                        f"--resume {run_id}: the run is being driven by {previous}{seen}; stop "
                        f"that process first, or if it is gone wait {stale_after:.0f}s for its "
                        "heartbeat to go stale, or pass --takeover"
                    )
            moved = _rowcount(
                s.execute(
                    update(TrialModel)
                    .where(TrialModel.run_id == run_id, TrialModel.state.in_(ACTIVE_STATES))
                    .values(state="waiting", worker=None)
                )
            )
            run.owner = owner
            run.status = "running"
            run.error = None
            run.finished_at = None
            run.heartbeat_at = utcnow()
            return Claim(previous, status, moved)

    def heartbeat(self, run_id: int, owner: str, trial_ids: Sequence[int] = ()) -> bool:
        """Refreshes the heartbeat of the run (if ``owner`` still drives it) and of
        ``trial_ids``; False when another process has taken the run over."""
        now = utcnow()
        with self.transaction() as s:
            done = _rowcount(
                s.execute(
                    update(RunModel)
                    .where(RunModel.id == run_id, RunModel.owner == owner)
                    .values(heartbeat_at=now)
                )
            )
            _touch_trials(s, trial_ids, now)
            return bool(done)

    def save_strategy_state(
        self, run_id: int, state: dict[str, Any] | None, *, owner: str | None = None
    ) -> None:
        """Stores the strategy's state after its last told batch (None clears it); with
        ``owner``, only while that process still drives the run."""
        with self.transaction() as s:
            q = update(RunModel).where(RunModel.id == run_id)
            if owner is not None:
                q = q.where(RunModel.owner == owner)
            s.execute(q.values(strategy_state=state))

    def strategy_state(self, run_id: int) -> dict[str, Any] | None:
        with self.session() as s:
            return s.scalar(select(RunModel.strategy_state).where(RunModel.id == run_id))

    def sweep_runs(self, sweep: str) -> list[RunInfo]:
        """The runs of sweep ``sweep``, oldest first."""
        return sorted(self._runs(RunModel.sweep == sweep), key=lambda r: r.id)

    def set_run_status(
        self, run_id: int, status: str, *, error: str | None = None, owner: str | None = None
    ) -> bool:
        """Sets the run's status (and error); with ``owner``, only while that process still
        drives the run (a process that was taken over leaves the new owner's run alone).
        Returns whether the status was set."""
        with self.transaction() as s:
            run = s.get(RunModel, run_id)
            if run is None:
                raise self._no_run(run_id)
            if owner is not None and run.owner != owner:
                return False
            run.status = status
            run.error = error
            run.finished_at = None if status in ("running", "queued") else utcnow()
            return True

    def _no_run(self, run_id: int) -> StoreError:
        return StoreError(
            f"--run: there is no run {run_id} in {display_url(self.url)}; "
            "`archsearch runs` lists the runs"
        )

    def get_run(self, run_id: int) -> RunInfo:
        """The run ``run_id`` with its trial counts.

        Raises:
            StoreError: no such run.
        """
        runs = self._runs(RunModel.id == run_id) if _fits(run_id) else []
        if not runs:
            raise self._no_run(run_id)
        return runs[0]

    def delete_run(self, run_id: int) -> Deleted:
        """Deletes a run with its trials, scores and intermediate values, in one transaction.

        Architectures stay: they are shared by digest, and another run (or a latency
        measurement) may use them, or start using them while this one is deleted; latency
        tables and supernets are never touched either.

        Raises:
            StoreError: no such run.
        """
        if not _fits(run_id):
            raise self._no_run(run_id)
        with self.transaction() as s:
            run = s.get(RunModel, run_id, with_for_update=True)
            if run is None:
                raise self._no_run(run_id)
            trial_ids = select(TrialModel.id).where(TrialModel.run_id == run_id)
            archs = s.scalar(
                select(func.count(func.distinct(TrialModel.architecture_id))).where(
                    TrialModel.run_id == run_id
                )
            )
            scores = _rowcount(
                s.execute(delete(ScoreModel).where(ScoreModel.trial_id.in_(trial_ids)))
            )
            s.execute(
                delete(TrialIntermediateModel).where(
                    TrialIntermediateModel.trial_id.in_(trial_ids)
                )
            )
            trials = _rowcount(s.execute(delete(TrialModel).where(TrialModel.run_id == run_id)))
            s.delete(run)
            return Deleted(trials, scores, int(archs or 0))

    def list_runs(self) -> list[RunInfo]:
        """Every run, newest first."""
        return self._runs(None)

    def _runs(self, condition: Any) -> list[RunInfo]:
        with self.session() as s:
            q = select(RunModel).order_by(RunModel.id.desc())
            if condition is not None:
                q = q.where(condition)
            runs = list(s.scalars(q))
            counts: dict[tuple[int, str], int] = {}
            if runs:
                rows = s.execute(
                    select(TrialModel.run_id, TrialModel.state, func.count())
                    .where(TrialModel.run_id.in_([r.id for r in runs]))
                    .group_by(TrialModel.run_id, TrialModel.state)
                )
                counts = {(rid, state): n for rid, state, n in rows}
            fields = RunConfig.__dataclass_fields__
            return [
                RunInfo(
                    id=r.id,
                    config=RunConfig(**{k: getattr(r, k) for k in fields}),
                    status=r.status,
                    created_at=r.created_at,
                    finished_at=r.finished_at,
                    host=r.host,
                    version=r.version,
                    error=r.error,
                    n_complete=counts.get((r.id, "complete"), 0),
                    n_failed=counts.get((r.id, "failed"), 0),
                    n_pruned=counts.get((r.id, "pruned"), 0),
                    n_active=sum(counts.get((r.id, st), 0) for st in ACTIVE_STATES),
                    owner=r.owner,
                    heartbeat_at=r.heartbeat_at,
                    sweep=r.sweep,
                    sweep_point=r.sweep_point,
                )
                for r in runs
            ]

    # -- trials --------------------------------------------------------------------------

    def add_trials(
        self, run_id: int, records: Sequence[TrialRecord], *, owner: str | None = None
    ) -> list[int]:
        """Stores finished trials (architectures upserted by digest) in one transaction.

        A candidate the run already holds as ``waiting``/``running`` (queued by a previous
        owner, see :meth:`claim_run`) is finished in place, keeping its number; the others get
        new numbers, consecutive within the run. Returns the trials' numbers.

        Raises:
            RunTakenOver: ``owner`` is given and no longer drives the run; nothing is stored.
        """
        if not records:
            return []
        with self.transaction() as s:
            self._lock_run(s, run_id, owner)
            ids = self._upsert_architectures(s, [(r.arch, r.cost) for r in records])
            open_ = self._open_trials(s, run_id, list(ids.values()))
            number = self._next_number(s, run_id)
            worker = worker_id()
            now = utcnow()
            out: list[int] = []
            for r in records:
                t = open_.get(ids[r.arch.digest])
                if t is None:
                    t = TrialModel(
                        run_id=run_id, number=number, architecture_id=ids[r.arch.digest]
                    )
                    number += 1
                    s.add(t)
                else:
                    t.attempts += 1
                t.state = r.state
                t.started_at = r.started_at or now
                t.finished_at = r.finished_at or now
                t.heartbeat_at = r.finished_at or now
                t.worker = r.worker or worker
                t.error = r.error
                t.scores = [
                    ScoreModel(metric=m, value=_to_db(v)) for m, v in sorted(r.values.items())
                ]
                out.append(t.number)
            return out

    def queue_trials(
        self,
        run_id: int,
        candidates: Sequence[tuple[Architecture, Cost]],
        *,
        worker: str | None = None,
        owner: str | None = None,
    ) -> list[int]:
        """Records candidates about to be evaluated; returns their trial ids.

        With ``worker`` the trials are ``running`` on it (attempt counted, heartbeat set);
        without, ``waiting`` for a worker to :meth:`begin_trial`. A candidate already held
        ``waiting``/``running`` keeps its row and number.

        Raises:
            RunTakenOver: ``owner`` is given and no longer drives the run.
        """
        if not candidates:
            return []
        with self.transaction() as s:
            self._lock_run(s, run_id, owner)
            ids = self._upsert_architectures(s, candidates)
            open_ = self._open_trials(s, run_id, list(ids.values()))
            number = self._next_number(s, run_id)
            now = utcnow()
            rows: list[TrialModel] = []
            for arch, _ in candidates:
                t = open_.get(ids[arch.digest])
                if t is None:
                    t = TrialModel(
                        run_id=run_id, number=number, architecture_id=ids[arch.digest], attempts=0
                    )
                    number += 1
                    s.add(t)
                t.state = "running" if worker else "waiting"
                t.worker = worker
                t.error = None
                t.heartbeat_at = now
                if worker:
                    t.attempts += 1
                    t.started_at = now
                rows.append(t)
            s.flush()
            return [t.id for t in rows]

    def begin_trials(self, trial_ids: Sequence[int], worker: str) -> list[bool]:
        """A worker starts evaluating queued trials (attempt counted, heartbeat set), in one
        transaction; False for a trial already finished (a retried task whose first attempt
        got through), which the worker must not evaluate again."""
        now = utcnow()
        with self.transaction() as s:
            rows = s.scalars(
                select(TrialModel).where(TrialModel.id.in_(list(trial_ids))).with_for_update()
            )
            by_id = {t.id: t for t in rows}
            out = []
            for tid in trial_ids:
                t = by_id.get(tid)
                if t is None or t.state not in ACTIVE_STATES:
                    out.append(False)
                    continue
                t.state, t.worker, t.attempts = "running", worker, t.attempts + 1
                t.started_at = t.heartbeat_at = now
                out.append(True)
            return out

    def begin_trial(self, trial_id: int, worker: str) -> bool:
        """:meth:`begin_trials` for one trial."""
        return self.begin_trials([trial_id], worker)[0]

    def heartbeat_trials(self, trial_ids: Sequence[int]) -> None:
        """Refreshes the heartbeat of running trials (called by the workers evaluating them)."""
        with self.transaction() as s:
            _touch_trials(s, trial_ids, utcnow())

    def release_trial(self, trial_id: int, *, owner: str | None = None) -> None:
        """Puts a trial whose evaluation was interrupted back to ``waiting`` (with ``owner``:
        only while that process still drives its run)."""
        with self.transaction() as s:
            q = update(TrialModel).where(
                TrialModel.id == trial_id, TrialModel.state.in_(ACTIVE_STATES)
            )
            if owner is not None:
                q = q.where(
                    TrialModel.run_id.in_(select(RunModel.id).where(RunModel.owner == owner))
                )
            s.execute(q.values(state="waiting", worker=None))

    def finish_trials(
        self,
        outcomes: Sequence[tuple[int, Mapping[str, float], str, str | None]],
        *,
        owner: str | None = None,
    ) -> list[bool]:
        """Stores ``(trial id, scores, state, error)`` of finished trials in one transaction;
        False (nothing written) for a trial finished already, so that a retried evaluation
        never stores a trial twice.

        Raises:
            RunTakenOver: ``owner`` is given and no longer drives a trial's run (the new owner
                evaluates the trial again); nothing is stored.
        """
        for _, _, state, _ in outcomes:
            if state not in FINISHED_STATES:
                raise ValueError(f"state {state!r} is not one of {FINISHED_STATES}")
        now = utcnow()
        with self.transaction() as s:
            ids = [o[0] for o in outcomes]
            if owner is not None:
                runs = s.scalars(select(TrialModel.run_id).where(TrialModel.id.in_(ids))).all()
                for run_id in sorted(set(runs)):
                    self._lock_run(s, run_id, owner)
            rows = s.scalars(select(TrialModel).where(TrialModel.id.in_(ids)).with_for_update())
            by_id = {t.id: t for t in rows}
            out = []
            for tid, values, state, error in outcomes:
                t = by_id.get(tid)
                if t is None or t.state in FINISHED_STATES:
                    out.append(False)
                    continue
                t.state, t.error = state, error
                t.finished_at = t.heartbeat_at = now
                t.started_at = t.started_at or now
                t.scores = [
                    ScoreModel(metric=m, value=_to_db(v)) for m, v in sorted(values.items())
                ]
                out.append(True)
            return out

    def finish_trial(
        self,
        trial_id: int,
        values: Mapping[str, float],
        *,
        state: str = "complete",
        error: str | None = None,
        owner: str | None = None,
    ) -> bool:
        """:meth:`finish_trials` for one trial."""
        return self.finish_trials([(trial_id, values, state, error)], owner=owner)[0]

    def trial_state(self, trial_id: int) -> tuple[str, dict[str, float], str | None]:
        """A trial's state, scores and error."""
        with self.session() as s:
            t = s.get(TrialModel, trial_id)
            if t is None:
                raise StoreError(f"there is no trial with id {trial_id}")
            values = {sc.metric: _from_db(sc.value) for sc in t.scores}
            return t.state, values, t.error

    def add_intermediate(self, trial_id: int, step: int, values: Mapping[str, float]) -> None:
        """Stores the values a trial reported at ``step`` (a step reported again is replaced,
        e.g. by a retried attempt)."""
        with self.transaction() as s:
            s.execute(
                delete(TrialIntermediateModel).where(
                    TrialIntermediateModel.trial_id == trial_id,
                    TrialIntermediateModel.step == step,
                )
            )
            s.add_all(
                TrialIntermediateModel(trial_id=trial_id, step=step, metric=m, value=_to_db(v))
                for m, v in sorted(values.items())
            )

    def intermediates(self, run_id: int) -> dict[int, list[tuple[int, dict[str, float]]]]:
        """Every intermediate value of a run: trial number -> [(step, values)] by step."""
        with self.session() as s:
            rows = s.execute(
                select(
                    TrialModel.number,
                    TrialIntermediateModel.step,
                    TrialIntermediateModel.metric,
                    TrialIntermediateModel.value,
                )
                .join(TrialModel, TrialIntermediateModel.trial_id == TrialModel.id)
                .where(TrialModel.run_id == run_id)
                .order_by(TrialModel.number, TrialIntermediateModel.step)
            )
            out: dict[int, dict[int, dict[str, float]]] = {}
            for number, step, metric, value in rows:
                out.setdefault(number, {}).setdefault(step, {})[metric] = _from_db(value)
            return {n: sorted(steps.items()) for n, steps in out.items()}

    def trial_attempts(self, run_id: int) -> dict[str, int]:
        """digest -> attempts of each trial of the run."""
        with self.session() as s:
            rows = s.execute(
                select(ArchitectureModel.digest, TrialModel.attempts)
                .join(TrialModel, TrialModel.architecture_id == ArchitectureModel.id)
                .where(TrialModel.run_id == run_id)
            )
            return {d: int(a) for d, a in rows}

    def _lock_run(self, s: Session, run_id: int, owner: str | None = None) -> None:
        """Locks the run's row for the transaction (serialising numbering per run; a no-op on
        SQLite, whose write lock is held already) and, with ``owner``, checks that this
        process still drives the run.

        Raises:
            RunTakenOver: another process has claimed the run (``run --resume --takeover``).
        """
        locked = s.execute(
            select(RunModel.id, RunModel.owner).where(RunModel.id == run_id).with_for_update()
        ).first()
        if locked is None:
            raise self._no_run(run_id)
        if owner is not None and locked.owner != owner:
            raise RunTakenOver(run_id, locked.owner)

    @staticmethod
    def _next_number(s: Session, run_id: int) -> int:
        last = s.scalar(select(func.max(TrialModel.number)).where(TrialModel.run_id == run_id))
        return 0 if last is None else last + 1

    @staticmethod
    def _open_trials(s: Session, run_id: int, arch_ids: list[int]) -> dict[int, TrialModel]:
        """The run's ``waiting``/``running`` trials of these architectures, by architecture."""
        rows = s.scalars(
            select(TrialModel).where(
                TrialModel.run_id == run_id,
                TrialModel.architecture_id.in_(arch_ids),
                TrialModel.state.in_(ACTIVE_STATES),
            )
        )
        return {t.architecture_id: t for t in rows}

    def _upsert_architectures(
        self, s: Session, candidates: Sequence[tuple[Architecture, Cost]]
    ) -> dict[str, int]:
        rows = {
            arch.digest: {
                "digest": arch.digest,
                "spec": arch.to_json(),
                "params": cost.params,
                "macs": cost.macs,
                "activations": cost.activations,
                "created_at": utcnow(),
            }
            for arch, cost in candidates
        }
        if self.dialect in ("sqlite", "postgresql"):
            from sqlalchemy.dialects import postgresql, sqlite

            insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
            s.execute(
                insert(ArchitectureModel)
                .values(list(rows.values()))
                .on_conflict_do_nothing(index_elements=["digest"])
            )
        else:  # other backends: insert what is missing (the unique digest still guards)
            existing = set(
                s.scalars(
                    select(ArchitectureModel.digest).where(ArchitectureModel.digest.in_(rows))
                )
            )
            s.add_all(ArchitectureModel(**row) for d, row in rows.items() if d not in existing)
            s.flush()
        found = s.execute(
            select(ArchitectureModel.digest, ArchitectureModel.id).where(
                ArchitectureModel.digest.in_(list(rows))
            )
        )
        return {d: i for d, i in found}

    def trials(self, run_id: int, *, states: Sequence[str] | None = None) -> list[StoredTrial]:
        """The run's trials in number order, with costs and scores."""
        with self.session() as s:
            q = (
                select(TrialModel, ArchitectureModel)
                .join(ArchitectureModel, TrialModel.architecture_id == ArchitectureModel.id)
                .where(TrialModel.run_id == run_id)
                .order_by(TrialModel.number)
            )
            if states is not None:
                q = q.where(TrialModel.state.in_(states))
            rows = s.execute(q).all()
            scores: dict[int, dict[str, float]] = {}
            ids = [t.id for t, _ in rows]
            for chunk in range(0, len(ids), 5000):
                part = ids[chunk : chunk + 5000]
                for tid, metric, value in s.execute(
                    select(ScoreModel.trial_id, ScoreModel.metric, ScoreModel.value).where(
                        ScoreModel.trial_id.in_(part)
                    )
                ):
                    scores.setdefault(tid, {})[metric] = _from_db(value)
            return [
                StoredTrial(
                    number=t.number,
                    digest=a.digest,
                    spec=a.spec,
                    state=t.state,
                    cost=Cost(a.params, a.macs, a.activations),
                    values=scores.get(t.id, {}),
                )
                for t, a in rows
            ]

    def metrics(self, run_id: int) -> list[str]:
        """Names of the scores stored for a run's trials."""
        with self.session() as s:
            q = (
                select(ScoreModel.metric)
                .join(TrialModel, ScoreModel.trial_id == TrialModel.id)
                .where(TrialModel.run_id == run_id)
                .distinct()
            )
            return sorted(s.scalars(q))

    # -- architectures -------------------------------------------------------------------

    def architecture(self, digest: str) -> ArchitectureInfo:
        """The architecture whose digest is or starts with ``digest`` (at least 6 characters).

        Raises:
            StoreError: no architecture, or several, match.
        """
        prefix = digest.strip().lower()
        if len(prefix) < 6 or any(c not in "0123456789abcdef" for c in prefix):
            raise UserError(
                f"digest {digest!r}: give at least 6 hex characters of an architecture's digest"
            )
        with self.session() as s:
            found = list(
                s.scalars(
                    select(ArchitectureModel)
                    .where(ArchitectureModel.digest.startswith(prefix))
                    .limit(5)
                )
            )
            if not found:
                raise StoreError(
                    f"no architecture with digest {prefix!r} in {display_url(self.url)}"
                )
            if len(found) > 1:
                raise StoreError(
                    f"digest {prefix!r} is ambiguous: "
                    f"{', '.join(a.digest[:16] for a in found)}; give more characters"
                )
            a = found[0]
            trials = []
            for t in s.scalars(
                select(TrialModel)
                .where(TrialModel.architecture_id == a.id)
                .order_by(TrialModel.run_id, TrialModel.number)
            ):
                trials.append(
                    {
                        "run": t.run_id,
                        "trial": t.number,
                        "state": t.state,
                        "scores": {sc.metric: _from_db(sc.value) for sc in t.scores},
                    }
                )
            return ArchitectureInfo(
                a.digest, a.spec, Cost(a.params, a.macs, a.activations), trials
            )

    # -- latency -------------------------------------------------------------------------

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

    # -- supernets -------------------------------------------------------------------

    def create_supernet(
        self, *, space: str, space_digest: str, checkpoint: str, config: dict[str, Any]
    ) -> int:
        """Records a supernet training about to start; returns its id."""
        with self.transaction() as s:
            row = SupernetModel(
                space=space,
                space_digest=space_digest,
                checkpoint=checkpoint,
                config=config,
                curve=[],
                epochs_done=0,
                status="training",
                host=socket.gethostname(),
            )
            s.add(row)
            s.flush()
            return int(row.id)

    def update_supernet(
        self,
        supernet_id: int,
        *,
        status: str | None = None,
        curve: list[dict[str, float]] | None = None,
        error: str | None = None,
        checkpoint: str | None = None,
    ) -> None:
        """Stores a supernet's progress: its curve (the epochs done), status, checkpoint."""
        with self.transaction() as s:
            row = s.get(SupernetModel, supernet_id)
            if row is None:
                raise StoreError(f"no supernet with id {supernet_id} in {display_url(self.url)}")
            if curve is not None:
                row.curve = [dict(r) for r in curve]
                row.epochs_done = len(curve)
            if status is not None:
                row.status = status
            if error is not None:
                row.error = first_line(error)
            if checkpoint is not None:
                row.checkpoint = checkpoint
            row.updated_at = utcnow()

    def get_supernet(self, supernet_id: int) -> dict[str, Any]:
        """A supernet's row as a dict.

        Raises:
            StoreError: no supernet has this id (the message lists the stored ones).
        """
        with self.session() as s:
            row = s.get(SupernetModel, supernet_id) if _fits(supernet_id) else None
            if row is None:
                ids = s.scalars(select(SupernetModel.id).order_by(SupernetModel.id)).all()
                known = ", ".join(map(str, ids)) or "none yet"
                raise StoreError(
                    f"--supernet: no supernet with id {supernet_id} in this database (stored: "
                    f"{known}); give a checkpoint path or see `archsearch supernet list`"
                )
            return _supernet_dict(row)

    def list_supernets(self) -> list[dict[str, Any]]:
        with self.session() as s:
            rows = s.scalars(select(SupernetModel).order_by(SupernetModel.id)).all()
            return [_supernet_dict(r) for r in rows]

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

    # -- queries -------------------------------------------------------------------------

    def results(
        self, run_id: int, *, metrics: Sequence[str] = (), where: Expr | None = None
    ) -> list[dict[str, Any]]:
        """The run's complete trials as rows: trial, digest, costs and the requested metrics.

        ``where`` is compiled into SQL over the cost columns and the metrics.

        Raises:
            UserError: a metric that no trial of the run has (the message lists them).
        """
        self.get_run(run_id)
        stored = self.metrics(run_id)
        known = [*COST_NAMES, *stored]
        wanted = [m for m in metrics if m not in COST_NAMES]
        if where is not None:
            where.check_names(known, "--where")
            wanted += [n for n in sorted(where.names) if n not in COST_NAMES]
        for m in wanted:
            if m not in stored:
                raise UserError(
                    f"metric {m!r} is not stored for run {run_id}; choose from {', '.join(known)}"
                )
        T, A = TrialModel, ArchitectureModel
        columns: dict[str, Any] = {
            "params": A.params,
            "macs": A.macs,
            "activations": A.activations,
        }
        q = (
            select(T.number, A.digest, A.params, A.macs, A.activations)
            .join(A, T.architecture_id == A.id)
            .where(T.run_id == run_id, T.state == "complete")
        )
        for i, m in enumerate(dict.fromkeys(wanted)):
            sc = aliased(ScoreModel, name=f"s{i}")
            q = q.outerjoin(sc, and_(sc.trial_id == T.id, sc.metric == m))
            q = q.add_columns(sc.value.label(f"m{i}"))
            columns[m] = sc.value
        if where is not None:
            q = q.where(where.to_sql(columns))
        out = []
        with self.session() as s:
            for row in s.execute(q.order_by(T.number)):
                rec: dict[str, Any] = {
                    "trial": row[0],
                    "digest": row[1],
                    "params": row[2],
                    "macs": row[3],
                    "activations": row[4],
                }
                for i, m in enumerate(dict.fromkeys(wanted)):
                    rec[m] = _from_db(row[5 + i])  # type: ignore[arg-type]
                out.append(rec)
        return out

    def pareto(
        self,
        run_id: int,
        objectives: Sequence[tuple[str, str]],
        *,
        where: Expr | None = None,
        extra: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """The run's non-dominated trials for ``objectives`` (``(metric, "min"|"max")``).

        Constraints in ``where`` filter in SQL; non-dominated sorting runs in numpy. Rows are
        sorted by the first objective, best first; trials with a NaN objective never qualify.
        """
        names = [m for m, _ in objectives]
        rows = self.results(run_id, metrics=[*names, *extra], where=where)
        if not rows:
            return []
        values = to_minimisation([[r[m] for m in names] for r in rows], [d for _, d in objectives])
        front = [r for r, keep in zip(rows, pareto_front_mask(values), strict=True) if keep]
        first, direction = objectives[0]
        front.sort(key=lambda r: -r[first] if direction == "max" else r[first])
        return front


def _supernet_dict(row: SupernetModel) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in SupernetModel.__table__.columns}


def _touch_trials(s: Session, trial_ids: Sequence[int], now: datetime) -> None:
    """Refreshes the heartbeat of those of ``trial_ids`` still running."""
    if trial_ids:
        s.execute(
            update(TrialModel)
            .where(TrialModel.id.in_(list(trial_ids)), TrialModel.state == "running")
            .values(heartbeat_at=now)
        )


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
