"""Scores looked up in a user's CSV table: benchmark accuracies, measured latencies, anything.

A table has a key column and numeric columns; each numeric column becomes a metric of the
same name, usable as an objective (``--objectives cifar10_test:max``), a constraint
(``--constraint "lat_ms_raspi4 <= 25.68"``) or a stored score. The key column is either

* ``digest``: an architecture's digest, in full or a prefix of 6+ characters (as
  ``archsearch pareto`` prints them), which is how a user brings measurements of networks that
  archsearch proposed; or
* ``arch_str``: NAS-Bench-201's cell string (:mod:`archsearch.spaces.nb201`), which keys the
  NAS-Bench-201 tables by cell, whatever the number of classes of the head.

An architecture missing from the table scores NaN on every column (a constraint on a column
then rejects it). Directions: a column whose name has a cost-like word (``lat``, ``ms``,
``latency``, ``time``, ``energy``, ``loss``, ``err``, ``error``, ``mem``, ``size``, ...) is
minimised, any other maximised, unless an objective says ``:min`` or ``:max``.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import ClassVar

from archsearch.errors import NotInSpaceError, UserError
from archsearch.evaluators.base import COST_METRICS, Direction, Evaluator, Metric
from archsearch.files import MAX_TABLE_BYTES, decode, read_bytes, short
from archsearch.limits import MAX_METRIC_NAME
from archsearch.spec import Architecture

KEYS = ("digest", "arch_str")
"""Key columns the table evaluator understands, in order of preference."""
INDEX_COLUMNS = frozenset({"idx", "index", "id", "row"})
"""Numeric columns never chosen as the default objective (row numbers)."""
_MIN_WORDS = frozenset(
    {
        *("lat", "latency", "ms", "us", "sec", "seconds", "time", "energy", "joules", "power"),
        *("loss", "err", "error", "mem", "memory", "size", "bytes", "mb", "params", "flops"),
        *("macs", "cost"),
    }
)


def guess_direction(column: str) -> Direction:
    """``min`` for a column named like a cost (``lat_ms_pixel3``, ``val_loss``), else ``max``."""
    words = {w for w in re.split(r"[^a-z0-9]+", column.lower()) if w}
    return "min" if words & _MIN_WORDS else "max"


@dataclass(frozen=True)
class TableData:
    """A parsed table: its key column, numeric columns and rows by key."""

    path: str
    sha256: str
    key: str
    columns: tuple[str, ...]
    rows: dict[str, tuple[float, ...]]
    prefix_lengths: tuple[int, ...]


@cache
def _read(path: str, mtime_ns: int, size: int, key: str | None) -> TableData:
    raw = read_bytes(path, what="--table", max_bytes=MAX_TABLE_BYTES)
    text = decode(raw, what=f"--table {path}")
    reader = csv.reader(text.splitlines())
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise UserError(
            f"--table {path}: the file is empty; give a CSV with a header row"
        ) from None
    if key is None:
        key = next((k for k in KEYS if k in header), None)
        if key is None:
            raise UserError(
                f"--table {path}: no key column; name one 'digest' (architecture digests) or "
                f"'arch_str' (NAS-Bench-201 cells); the header is {', '.join(header)}"
            )
    elif key not in header:
        raise UserError(
            f"--table {path}: key column {key!r} is not in the header ({', '.join(header)})"
        )
    k = header.index(key)
    try:
        body = [r for r in reader if any(c.strip() for c in r)]
    except csv.Error as e:  # a field over the csv module's size limit, say
        raise UserError(f"--table {path}:{reader.line_num}: {e}") from None
    numeric: list[int] = []
    for j in range(len(header)):
        if j == k:
            continue
        values = [r[j].strip() if j < len(r) else "" for r in body]
        if body and all(_is_number(v) for v in values if v) and any(values):
            numeric.append(j)
    for j in numeric:
        if not header[j] or len(header[j]) > MAX_METRIC_NAME:
            raise UserError(
                f"--table {path}: column {short(header[j], 40)!r} ({len(header[j])} characters) "
                f"cannot be a metric: name it with 1 to {MAX_METRIC_NAME} characters"
            )
    rows: dict[str, tuple[float, ...]] = {}
    for n, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise UserError(
                f"--table {path}:{n}: {len(r)} fields, but the header has {len(header)}; fix "
                "the row (quote values that contain commas)"
            )
        name = r[k].strip()
        if name in rows:
            raise UserError(f"--table {path}:{n}: key {name!r} appears twice; keys must be unique")
        rows[name] = tuple(float(r[j]) if r[j].strip() else math.nan for j in numeric)
    lengths = sorted({len(x) for x in rows}) if key == "digest" else []
    if key == "digest" and lengths and lengths[0] < 6:
        raise UserError(f"--table {path}: digests must have at least 6 characters")
    return TableData(
        path,
        hashlib.sha256(raw).hexdigest(),
        key,
        tuple(header[j] for j in numeric),
        rows,
        tuple(lengths),
    )


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def load_table(path: str | Path, key: str | None = None) -> TableData:
    """Reads (and caches, until the file changes) the CSV table at ``path``.

    Raises:
        UserError: the file is missing, has no key column, a ragged row or a duplicate key.
    """
    try:
        p = Path(path).expanduser().resolve()
        st = p.stat()
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) else str(e)
        raise UserError(f"--table {short(str(path))}: cannot read the file: {reason}") from None
    if not p.is_file():
        raise UserError(f"--table {path}: not a file; give the path of a CSV table")
    return _read(str(p), st.st_mtime_ns, st.st_size, key)


class Table(Evaluator):
    """Scores from a CSV table (see the module docstring).

    Args:
        path: The CSV file (``--table``).
        key: The key column (default: ``digest`` if present, else ``arch_str``).
        metric: The column a search optimises by default (``--score table:<column>``);
            default: the first numeric column not named like a row index.
        columns: Columns to expose as metrics, comma-separated (default: every numeric one).
        sha256: The file's expected SHA-256 (set when a stored run is resumed): a changed
            table is refused rather than mixed into the run's results.
    """

    name = "table"
    metrics: tuple[Metric, ...] = ()  # type: ignore[misc]
    """Set per instance from the table's columns (the class has none)."""
    cheap: ClassVar[bool] = True
    dynamic_metrics: ClassVar[bool] = True

    def __init__(
        self,
        *,
        path: str | None = None,
        key: str | None = None,
        metric: str | None = None,
        columns: str | Sequence[str] | None = None,
        sha256: str | None = None,
    ) -> None:
        if path is None:
            raise UserError(
                "table: no table file; pass --table PATH (a CSV with a 'digest' or 'arch_str' "
                "column and numeric columns)"
            )
        self.data = load_table(path, key)
        if sha256 is not None and sha256 != self.data.sha256:
            raise UserError(
                f"--table {self.data.path}: the file changed since the run was started (its "
                "SHA-256 differs); restore it or start a new run"
            )
        available = self.data.columns
        if columns is None:
            chosen = list(available)
        else:
            chosen = [
                c.strip() for c in (columns.split(",") if isinstance(columns, str) else columns)
            ]
            for c in chosen:
                if c not in available:
                    raise UserError(
                        f"-S columns: {c!r} is not a numeric column of {self.data.path}; "
                        f"choose from {', '.join(available)}"
                    )
        costs = {m.name for m in COST_METRICS}
        clash = [c for c in chosen if c in costs]
        if clash:
            raise UserError(
                f"--table {self.data.path}: column {clash[0]!r} has the name of an exact cost "
                "metric archsearch always stores; leave it out with -S columns=... or rename it"
            )
        if not chosen:
            raise UserError(f"--table {self.data.path}: no numeric columns to score with")
        if metric is None:
            metric = next((c for c in chosen if c.lower() not in INDEX_COLUMNS), chosen[0])
        elif metric not in chosen:
            raise UserError(
                f"--score table:{metric}: {metric!r} is not a numeric column of "
                f"{self.data.path}; choose from {', '.join(chosen)}"
            )
        ordered = [metric, *(c for c in chosen if c != metric)]
        name = Path(self.data.path).name
        self.metrics = tuple(
            Metric(c, guess_direction(c), f"column {c} of {name}") for c in ordered
        )
        self._index = [available.index(c) for c in ordered]
        self.key = self.data.key
        self.columns = None if columns is None else chosen
        self.misses = 0
        """Architectures looked up and not found, since creation."""

    def lookup(self, arch: Architecture) -> tuple[float, ...] | None:
        """The row of ``arch`` (its values in :attr:`metrics` order), or None if absent."""
        if self.key == "digest":
            for n in self.data.prefix_lengths:
                row = self.data.rows.get(arch.digest[:n])
                if row is not None:
                    return row
            return None
        from archsearch.spaces.nb201 import arch_str  # networkx: imported when used

        try:
            return self.data.rows.get(arch_str(arch))
        except NotInSpaceError:
            return None

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        out = []
        for arch in archs:
            row = self.lookup(arch)
            if row is None:
                self.misses += 1
                out.append({m.name: math.nan for m in self.metrics})
            else:
                out.append(
                    {m.name: row[j] for m, j in zip(self.metrics, self._index, strict=True)}
                )
        return out

    def config(self) -> dict[str, object]:
        return {
            "path": self.data.path,
            "key": self.key,
            "metric": self.metrics[0].name,
            **({"columns": self.columns} if self.columns is not None else {}),
            "sha256": self.data.sha256,
        }
