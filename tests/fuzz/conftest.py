"""The fuzz suite's machinery: a fork server that runs ``archsearch`` commands with a memory
and a time limit, a seeded database, and the property every command must keep.

The property (:func:`check`): the command exits 0 or 2, never with a traceback; a failure is
one line on stderr; it finishes within ``timeout`` seconds and ``memory`` bytes (the child
is killed beyond either, which the check reports as a hang or an exhaustion); and every row
the database held before is still there, unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60
"""Seconds a fuzzed command may take (every one here should take a few)."""
MEMORY = 2 * 1024**3
"""Bytes of address space a fuzzed command may add to the server's."""


def fuzz_examples(ci: int) -> int:
    """Examples per fuzz test: ``ci`` in the default run; the profile's count under a long
    profile (``pytest tests/fuzz --hypothesis-profile fuzz``)."""
    return settings.default.max_examples if settings.default.max_examples > 100 else ci


@dataclass
class Outcome:
    args: list[str]
    code: int | None
    signal: int | None
    stdout: str
    stderr: str
    seconds: float
    peak_rss_above_server: int


class CliServer:
    """A running :mod:`tests.fuzz.forkserver`."""

    def __init__(self) -> None:
        self.log: list[Outcome] = []
        self._start()

    def _start(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.forkserver"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def __call__(
        self,
        *args: str,
        cwd: Path,
        env: dict[str, str] | None = None,
        timeout: int = TIMEOUT,
        memory: int = MEMORY,
    ) -> Outcome:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        request = {
            "args": list(args),
            "cwd": str(cwd),
            "env": {"COLUMNS": "100", **(env or {})},
            "timeout": timeout,
            "memory": memory,
        }
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            answer = json.loads(self.proc.stdout.readline())
        except BaseException:
            # Interrupted mid-exchange (a test timeout): the answer would be read by the next
            # request, so start a fresh server.
            self.proc.kill()
            self.proc.wait()
            self._start()
            raise
        out = Outcome(list(args), **answer)
        self.log.append(out)
        if os.environ.get("ARCHSEARCH_FUZZ_LOG"):  # one line per command, to study a long run
            with open(os.environ["ARCHSEARCH_FUZZ_LOG"], "a") as f:
                f.write(
                    json.dumps(
                        {
                            "args": [a[:200] for a in args],
                            "code": out.code,
                            "signal": out.signal,
                            "seconds": round(out.seconds, 3),
                            "peak_rss": out.peak_rss_above_server,
                            "stderr": out.stderr[-300:],
                        }
                    )
                    + "\n"
                )
        return out

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def cli() -> Iterator[CliServer]:
    server = CliServer()
    yield server
    server.close()


def snapshot(db: Path) -> dict[str, set[tuple[object, ...]]]:
    """Every row of every table of a SQLite database."""
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: set(conn.execute(f'SELECT * FROM "{t}"')) for t in tables}


def check(out: Outcome, before: dict[str, set[tuple[object, ...]]] | None, db: Path) -> None:
    """The property of the module docstring."""
    shown = " ".join(a if len(a) < 80 else a[:77] + "..." for a in out.args)
    assert out.signal is None, (
        f"`archsearch {shown}` was killed by signal {out.signal} "
        f"({'a hang' if out.signal == 14 else 'memory'}) after {out.seconds:.1f}s"
    )
    assert "Traceback" not in out.stderr, f"`archsearch {shown}`: {out.stderr[-3000:]}"
    assert out.code in (0, 2), f"`archsearch {shown}` exited {out.code}: {out.stderr[-2000:]}"
    if out.code == 2:
        lines = [x for x in out.stderr.splitlines() if x.startswith("error:")]
        assert len(lines) == 1, f"`archsearch {shown}`: {out.stderr[-2000:]}"
    if before is not None:
        after = snapshot(db)
        for table, rows in before.items():
            assert rows <= after.get(table, set()), f"`archsearch {shown}` changed {table}"


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with two finished runs (hybrid with entropy; nb201 with a table), made
    once per session; tests copy it."""
    folder = tmp_path_factory.mktemp("seeded")
    db = folder / "seed.db"
    url = f"sqlite:///{db}"
    from typer.testing import CliRunner

    from archsearch.cli import app

    runner = CliRunner()
    for args in (
        ["run", "--space", "hybrid", "--score", "entropy", "--trials", "40", "--db", url],
        ["run", "--space", "nb201", "--score", "entropy", "--trials", "20", "--db", url],
    ):
        r = runner.invoke(app, args, catch_exceptions=False)
        assert r.exit_code == 0, r.output
    return db


@pytest.fixture
def fresh_db(seeded: Path, tmp_path: Path) -> Path:
    db = tmp_path / "fuzz.db"
    shutil.copy(seeded, db)
    return db
