"""The ``archsearch`` command: a typer app, one module per command group.

Every command is a thin wrapper over the library API. User errors (usage errors included)
print one line on stderr and exit with code 2; an unexpected error prints one line saying it
is a bug (``$ARCHSEARCH_DEBUG=1`` shows the traceback) and exits with 1. Ctrl-C during ``run``
keeps every evaluated candidate and exits with 130; SIGTERM does the same and exits with 143.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer import _click as click  # typer's own click, whose exceptions it raises
from typer.core import TyperGroup

from archsearch.cli import bench, db, evaluate, export, latency, plot, spaces, supernet, zoo
from archsearch.cli.common import (
    DEBUG_VAR,
    error_line,
    handle_errors,
    install_signal_handlers,
    interrupt_code,
)
from archsearch.cli.results import count, pareto, runs_app, show
from archsearch.cli.run import run
from archsearch.cli.serve import serve
from archsearch.cli.sweep import sweep


class _Group(TyperGroup):
    """The root command: a usage error (a missing option, a value of the wrong type) is one
    line on stderr with exit code 2, like every other user error."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            rv = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except click.ClickException as e:
            if not standalone_mode:
                raise
            if type(e).__name__ == "NoArgsIsHelpError":  # `archsearch` alone: the help
                typer.echo(e.format_message(), err=True)
                sys.exit(e.exit_code)
            where = getattr(e, "ctx", None)
            hint = f" (see `{where.command_path} --help`)" if where is not None else ""
            typer.echo(f"error: {e.format_message()}{hint}", err=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            typer.echo("aborted", err=True)
            sys.exit(1)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


app = typer.Typer(
    name="archsearch",
    cls=_Group,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(run)
app.command()(sweep)
app.add_typer(runs_app, name="runs")
app.command()(pareto)
app.command()(show)
app.command()(handle_errors(export.export))
app.add_typer(plot.app, name="plot")
app.command()(count)
app.command()(evaluate.evaluate)
app.command()(evaluate.evaluators)
app.command()(handle_errors(spaces.blocks))
app.add_typer(spaces.app, name="spaces")
app.command()(latency.devices)
app.add_typer(latency.app, name="latency")
app.add_typer(zoo.app, name="zoo")
app.add_typer(db.app, name="db")
app.add_typer(bench.app, name="bench")
app.add_typer(supernet.app, name="supernet")
app.command()(serve)


def _version(value: bool) -> None:
    if value:
        from archsearch._version import __version__

        typer.echo(f"archsearch {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print archsearch's version and exit.",
        ),
    ] = False,
) -> None:
    """Neural architecture search over hybrid conv/attention backbones.

    FLOP convention: 1 FLOP = 1 multiply-accumulate (ConvNeXt-T = 4.5 GFLOPs).
    """


def main() -> None:
    """Entry point of the ``archsearch`` console script: SIGTERM behaves like Ctrl-C, and no
    error ends in a traceback (:func:`archsearch.cli.common.error_line`)."""
    install_signal_handlers()
    try:
        app(prog_name="archsearch")
    except KeyboardInterrupt as e:  # outside a command that handles it
        typer.echo("interrupted", err=True)
        sys.exit(interrupt_code(e))
    except Exception as e:
        if os.environ.get(DEBUG_VAR):
            raise
        line, code = error_line(e)
        typer.echo(line, err=True)
        sys.exit(code)
