"""The driver's heartbeat: a thread that keeps a run's (and its running trials') heartbeat fresh.

A run whose heartbeat is older than :data:`STALE_AFTER` seconds, and whose owner is not a live
process on this host, counts as abandoned: ``archsearch run --resume`` takes it over and puts the
trials it left unfinished back in the queue (:meth:`archsearch.db.Store.claim_run`).
"""

from __future__ import annotations

import logging
import os
import threading

from archsearch.db.store import Store

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = float(os.environ.get("ARCHSEARCH_HEARTBEAT", "10"))
"""Seconds between heartbeats (``$ARCHSEARCH_HEARTBEAT``)."""
STALE_AFTER = float(os.environ.get("ARCHSEARCH_STALE_AFTER", "60"))
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
