"""A real ``archsearch serve`` process on a free loopback port, for the end-to-end tests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TOKEN = "test-token-0123"


@dataclass
class Served:
    url: str
    db: str
    process: subprocess.Popen[str]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.load(r)

    def post(self, path: str, body: Any = None, *, token: str | None = TOKEN) -> Any:
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def wait(self, what: str, check: Any, timeout: float = 120) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = check()
            if got:
                return got
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}")


def archsearch(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("archsearch")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


def start(db: str, *extra: str) -> Served:
    exe = Path(sys.executable).with_name("archsearch")
    p = subprocess.Popen(
        [str(exe), "serve", "--db", db, "--port", "0", "--token", TOKEN, *extra],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert p.stderr is not None
    line = p.stderr.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if found is None:
        p.kill()
        raise AssertionError(f"archsearch serve did not start: {line}{p.stderr.read()}")
    served = Served(f"http://127.0.0.1:{found[1]}", db, p)
    served.wait("the service", lambda: _up(served), timeout=60)
    return served


def _up(served: Served) -> bool:
    try:
        return bool(served.get("/api/v1/health"))
    except (urllib.error.URLError, ConnectionError):
        return False


@pytest.fixture
def small_run_db(tmp_path: Path) -> str:
    """A database holding one finished run of 20 trials (DeepMAD's entropy: no torch)."""
    db = f"sqlite:///{tmp_path / 'served.db'}"
    done = archsearch(
        "run", "--space", "hybrid", "--score", "entropy", "--trials", "20", "--db", db
    )
    assert done.returncode == 0, done.stderr
    return db


@pytest.fixture
def served(small_run_db: str) -> Iterator[Served]:
    s = start(small_run_db, "--workers", "1")
    try:
        yield s
    finally:
        s.process.terminate()
        try:
            s.process.wait(30)
        except subprocess.TimeoutExpired:
            s.process.kill()
