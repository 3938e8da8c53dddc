"""``archsearch db``: schema migrations of the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from archsearch.cli.common import DbOption, console, handle_errors

if TYPE_CHECKING:
    pass

app = typer.Typer(help="Database schema management.", no_args_is_help=True)


@app.command()
@handle_errors
def upgrade(db: DbOption = None) -> None:
    """Migrate the database to this archsearch's schema (creates it when empty)."""
    from archsearch.db import Store, display_url

    store = Store(db, upgrade=True)
    console.print(f"{display_url(store.url)}: schema at revision {store.head_revision()}")


@app.command()
@handle_errors
def current(db: DbOption = None) -> None:
    """Show the database's schema revision and the one this archsearch needs."""
    from archsearch.db import Store, display_url

    store = Store(db)
    console.print(
        f"{display_url(store.url)}: revision {store.current_revision()} "
        f"(this archsearch: {store.head_revision()})"
    )
