"""Options, output formats and error handling shared by the CLI commands."""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from archsearch.errors import UserError

P = ParamSpec("P")
R = TypeVar("R")

# Piped output is not wrapped at 80 columns: tables keep one line per row.
if TYPE_CHECKING:
    from rich.progress import Progress

    from archsearch.spec import Architecture

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


DEBUG_VAR = "ARCHSEARCH_DEBUG"
"""Set to 1 to see the traceback of an unexpected error instead of its one-line summary."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``docker stop``, ``kill``): handled like Ctrl-C, exit code 143."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def install_signal_handlers() -> None:
    """SIGTERM raises :class:`Terminated` in the main thread, so that a run stops as on
    Ctrl-C: finished trials stored, the run marked ``interrupted`` and resumable."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def interrupt_code(e: BaseException) -> int:
    """The exit code of an interruption: 143 for SIGTERM, 130 for Ctrl-C."""
    return 143 if isinstance(e, Terminated) else 130


_PARAM = (  # "name value: ..." (a value may hold colons: an address, a URL), then the rest
    re.compile(r"^(?P<names>[a-z_]+(?:/[a-z_]+)*)((?P<value> \S+?)?:(?=\s|$)| is required)"),
    re.compile(r"^(?P<names>[a-z_]+(?:/[a-z_]+)*)(?P<value> [^\s:]+):"),
)


_SHORT = {"option": "-O", "score_option": "-S", "device_option": "-D"}
"""The short flags, used where a message names one option of them (``-S lr: ...``)."""


@functools.cache
def _flags() -> dict[str, str]:
    from archsearch.distributed.runner import RayOptions
    from archsearch.search.settings import RunSettings

    names = [*RunSettings.model_fields, *RayOptions.__dataclass_fields__]
    names += ["where", "resume", "db", "workers"]
    return {n: "--" + n.replace("_", "-") for n in names}


def flag(name: str) -> str:
    """The flag of run setting ``name`` (``time_limit`` -> ``--time-limit``)."""
    return _flags().get(name, name)


def as_flags(message: str) -> str:
    """A library message in the CLI's words: a leading run setting (``trials: 0 is out of
    range``, ``init zoo:x skipped: ...``, ``budget/constraint: ...``, ``space is required``)
    becomes its flag (``--trials: ...``). The one place where parameter names map to flags."""
    m = _PARAM[0].match(message) or _PARAM[1].match(message)
    if m is None:
        return message
    names = m["names"].split("/")
    flags = _flags()
    if not all(n in flags for n in names):
        return message
    if m["value"] and len(names) == 1 and names[0] in _SHORT:  # "score_option lr:" -> "-S lr:"
        return _SHORT[names[0]] + message[len(m["names"]) :]
    return "/".join(flags[n] for n in names) + message[len(m["names"]) :]


def error_line(e: BaseException) -> tuple[str, int]:
    """The one line (and exit code) that stands for an exception: user errors and refusals
    of the operating system (a file that cannot be written) exit 2; anything else is a bug in
    archsearch, summarised with how to see its traceback, and exits 1."""
    if isinstance(e, UserError):
        return f"error: {as_flags(_one_line(str(e)))}", 2
    if isinstance(e, OSError):
        where = f" {e.filename!r}" if e.filename else ""
        return f"error: cannot use{where}: {e.strerror or _one_line(str(e))}", 2
    if isinstance(e, MemoryError):
        return (
            "error: out of memory; lower the sizes involved (batch, input, widths) or free memory",
            2,
        )
    return (
        f"error: internal error ({type(e).__name__}: {_one_line(str(e))[:300]}); this is a bug "
        f"in archsearch: please report it with the command (set {DEBUG_VAR}=1 for the "
        "traceback)",
        1,
    )


def _one_line(text: str) -> str:
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    return " ".join(lines) if len(lines) <= 3 else lines[0]


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turns errors into one line on stderr, never a traceback: user errors exit with code 2
    (:func:`error_line`); ``$ARCHSEARCH_DEBUG=1`` re-raises unexpected ones."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as e:
            if not isinstance(e, UserError | OSError | MemoryError) and os.environ.get(DEBUG_VAR):
                raise
            line, code = error_line(e)
            typer.echo(line, err=True)
            raise typer.Exit(code) from None

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
        clean = [{c: json_safe(r.get(c)) for c in columns} for r in rows]
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


def json_safe(v: Any) -> Any:
    """``v`` for JSON output: NaN and infinities as null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def progress_bar(label: str, *, suffix: str | None = None, transient: bool = False) -> Progress:
    """A progress bar on stderr: ``label``, the bar, done/total, elapsed time and ``suffix``
    (rich's templates, ``{task.fields[...]}``). rich.progress is imported here, not when the
    CLI starts."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if suffix is not None:
        columns.append(TextColumn(suffix))
    return Progress(*columns, console=err_console, transient=transient)


def stop_bar(bar: Progress) -> None:
    if bar.live.is_started:  # stopping a bar never shown would print an empty line
        bar.stop()


def resolve_arch(ref: str, db: str | None) -> Architecture:
    """An architecture from ``zoo:NAME``, a spec file (.yaml, .yml, .json) or a digest (or its
    first 6+ characters) in the database."""
    from archsearch.spec import Architecture

    if ref.startswith("zoo:"):
        from archsearch import zoo

        return zoo.get(ref[4:])
    if ref.endswith((".yaml", ".yml", ".json")):
        return Architecture.load(ref)
    if not re.fullmatch(r"[0-9a-fA-F]{6,64}", ref):
        shown = ref if len(ref) <= 80 else ref[:77] + "..."
        raise UserError(
            f"{shown!r} is not an architecture: give a digest (6-64 hex characters), a spec "
            "file (.yaml, .yml, .json) or zoo:NAME"
        )
    from archsearch.db import Store

    return Architecture.from_json(Store(db).architecture(ref).spec)
