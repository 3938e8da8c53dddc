"""The Store: every run, architecture, trial and score, on SQLite or PostgreSQL.

One facade over the store's aggregates, each in its own module:

* :mod:`~archsearch.db.engine`: URLs, connections, transactions, the schema (Alembic);
* :mod:`~archsearch.db.architectures`: architectures, unique by digest;
* :mod:`~archsearch.db.runs`: runs, trials, scores, intermediate values, a run's results;
* :mod:`~archsearch.db.frontier`: Pareto fronts of a run or of several, read as columns
  (:mod:`~archsearch.db.columns`);
* :mod:`~archsearch.db.latency`: devices, latency entries, fits and network measurements;
* :mod:`~archsearch.db.supernets`: supernet trainings.

A new aggregate is one more module and one more base class here.
"""

from __future__ import annotations

from archsearch.db.frontier import FrontierStore
from archsearch.db.latency import LatencyStore
from archsearch.db.supernets import SupernetsStore


class Store(FrontierStore, LatencyStore, SupernetsStore):
    """Access to an archsearch database.

    Args:
        url: A SQLAlchemy URL; None uses ``$ARCHSEARCH_DB`` or ``sqlite:///archsearch.db``.
        upgrade: Migrate an older schema to the current revision instead of refusing it.

    Raises:
        StoreError: the database cannot be reached, or is at another schema revision.
    """
