"""Alembic environment of the archsearch store.

The store runs migrations programmatically on its own connection (``config.attributes
["connection"]``); ``alembic -c alembic.ini ...`` from the repository also works for
developers, using ``sqlalchemy.url`` or ``ARCHSEARCH_DB``.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from archsearch.db.models import Base

VERSION_TABLE = "archsearch_version"

config = context.config
connection = config.attributes.get("connection")


def run(conn: object) -> None:
    context.configure(
        connection=conn,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies tables
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(
        "ARCHSEARCH_DB", "sqlite:///archsearch.db"
    )
    with create_engine(url).connect() as conn:
        run(conn)
        conn.commit()
