"""Options, output formats and error handling shared by the CLI commands."""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from archsearch.errors import UserError

P = ParamSpec("P")
R = TypeVar("R")

# Piped output is not wrapped at 80 columns: tables keep one line per row.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="ARCHSEARCH_DB",
        help="Database URL (sqlite:///file.db, postgresql://user@host/db). "
        "Default: $ARCHSEARCH_DB, else sqlite:///archsearch.db in the working directory.",
        show_default=False,
    ),
]


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class DocFormat(StrEnum):
    yaml = "yaml"
    json = "json"


FormatOption = Annotated[
    Format, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)
]


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turns user errors into one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def fmt_value(key: str, value: Any) -> str:
    """Human formatting for tables: GFLOPs for MACs, millions for counts."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, bool):
        return "yes" if value else "no"
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if key == "macs" and numeric:
        return f"{value / 1e9:.3f}"
    if key in ("params", "activations", "reference_params") and numeric:
        return f"{value / 1e6:.2f}"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


HEADERS = {
    "macs": "GFLOPs",
    "reference_params": "reference (M)",
    "params": "params (M)",
    "activations": "acts (M)",
}


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    fmt: Format,
    *,
    title: str | None = None,
    caption: str | None = None,
) -> None:
    """Prints rows as a rich table, JSON (a list of objects) or CSV, on stdout."""
    if fmt is Format.json:
        clean = [{c: _json_safe(r.get(c)) for c in columns} for r in rows]
        typer.echo(json.dumps(clean, indent=2))
        return
    if fmt is Format.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({c: r.get(c) for c in columns})
        typer.echo(buf.getvalue(), nl=False)
        return
    table = Table(title=title, caption=caption)
    for c in columns:
        table.add_column(HEADERS.get(c, c), justify="right" if c != "digest" else "left")
    for r in rows:
        table.add_row(*(fmt_value(c, r.get(c)) for c in columns))
    console.print(table)


def flop_caption() -> str:
    return "GFLOPs: 1 FLOP = 1 multiply-accumulate (MAC), as the seed papers report."


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
