"""The ``archsearch`` command: a typer app, one module per command group.

Every command is a thin wrapper over the library API. User errors print one line on stderr
and exit with code 2; Ctrl-C during ``run`` keeps finished trials and exits with 130.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from archsearch.cli import bench, db, evaluate, latency, spaces, supernet, zoo
from archsearch.cli.common import (
    DEBUG_VAR,
    error_line,
    handle_errors,
    install_signal_handlers,
    interrupt_code,
)
from archsearch.cli.results import count, pareto, runs, show
from archsearch.cli.run import run
from archsearch.cli.sweep import sweep

app = typer.Typer(
    name="archsearch",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(run)
app.command()(sweep)
app.command()(runs)
app.command()(pareto)
app.command()(show)
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


def _version(value: bool) -> None:
    if value:
        from archsearch import __version__

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
        app()
    except KeyboardInterrupt as e:  # outside a command that handles it
        typer.echo("interrupted", err=True)
        sys.exit(interrupt_code(e))
    except Exception as e:
        if os.environ.get(DEBUG_VAR):
            raise
        line, code = error_line(e)
        typer.echo(line, err=True)
        sys.exit(code)
