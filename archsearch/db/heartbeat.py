"""The driver's heartbeat: a thread that keeps a run's (and its running trials') heartbeat fresh.

A run whose heartbeat is older than :data:`STALE_AFTER` seconds, and whose owner is not a live
process on this host, counts as abandoned: ``archsearch run --resume`` takes it over and puts the
trials it left unfinished back in the queue (:meth:`archsearch.db.Store.claim_run`).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading

from archsearch.db.store import Store

log = logging.getLogger(__name__)


def _seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment; anything else is reported in one
    line on stderr and the default used (this runs at import, before any command could
    report an error)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= 86_400:
        sys.stderr.write(
            f"warning: ${name}={raw[:40]!r} is not a number of seconds in (0, 86400]; using "
            f"{default:g}\n"
        )
        return default
    return value


HEARTBEAT_INTERVAL = _seconds("ARCHSEARCH_HEARTBEAT", 10.0)
"""Seconds between heartbeats (``$ARCHSEARCH_HEARTBEAT``)."""
STALE_AFTER = _seconds("ARCHSEARCH_STALE_AFTER", 60.0)
"""Seconds without a heartbeat after which a run's owner counts as gone
(``$ARCHSEARCH_STALE_AFTER``)."""


class Heartbeat:
    """Refreshes ``run_id``'s heartbeat, and that of the trials in :attr:`trials`, every
    ``interval`` seconds from a daemon thread, until :meth:`stop`.

    :attr:`lost` turns True when another process has claimed the run; the driver then stops.
    A failed write (database briefly unreachable) is logged and retried at the next beat.
    """

    def __init__(
        self, store: Store, run_id: int, owner: str, *, interval: float = HEARTBEAT_INTERVAL
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.owner = owner
        self.interval = interval
        self.trials: set[int] = set()
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"archsearch-heartbeat-{run_id}", daemon=True
        )

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)

    def beat(self) -> None:
        """One heartbeat now (also called by the thread)."""
        if not self.store.heartbeat(self.run_id, self.owner, sorted(self.trials)):
            self.lost = True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as e:  # the next beat tries again; the driver's writes report
                log.warning("heartbeat of run %s failed: %s", self.run_id, e)
