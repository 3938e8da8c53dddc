"""Supernets in the store: the checkpoint's path, configuration, curve and status (the
weights stay on disk)."""

from __future__ import annotations

import socket
from typing import Any

from sqlalchemy import (
    select,
)

from archsearch.db.engine import (
    StoreBase,
    _fits,
    display_url,
)
from archsearch.db.models import (
    SupernetModel,
    utcnow,
)
from archsearch.errors import NotFoundError, first_line


class SupernetsStore(StoreBase):
    """Supernets: one row per training."""

    def create_supernet(
        self, *, space: str, space_digest: str, checkpoint: str, config: dict[str, Any]
    ) -> int:
        """Records a supernet training about to start; returns its id."""
        with self.transaction() as s:
            row = SupernetModel(
                space=space,
                space_digest=space_digest,
                checkpoint=checkpoint,
                config=config,
                curve=[],
                epochs_done=0,
                status="training",
                host=socket.gethostname(),
            )
            s.add(row)
            s.flush()
            return int(row.id)

    def update_supernet(
        self,
        supernet_id: int,
        *,
        status: str | None = None,
        curve: list[dict[str, Any]] | None = None,
        error: str | None = None,
        checkpoint: str | None = None,
    ) -> None:
        """Stores a supernet's progress: its curve (the epochs done), status, checkpoint."""
        with self.transaction() as s:
            row = s.get(SupernetModel, supernet_id)
            if row is None:
                raise NotFoundError(
                    f"no supernet with id {supernet_id} in {display_url(self.url)}"
                )
            if curve is not None:
                row.curve = [dict(r) for r in curve]
                row.epochs_done = len(curve)
            if status is not None:
                row.status = status
            if error is not None:
                row.error = first_line(error)
            if checkpoint is not None:
                row.checkpoint = checkpoint
            row.updated_at = utcnow()

    def get_supernet(self, supernet_id: int) -> dict[str, Any]:
        """A supernet's row as a dict.

        Raises:
            StoreError: no supernet has this id (the message lists the stored ones).
        """
        with self.session() as s:
            row = s.get(SupernetModel, supernet_id) if _fits(supernet_id) else None
            if row is None:
                ids = s.scalars(select(SupernetModel.id).order_by(SupernetModel.id)).all()
                known = ", ".join(map(str, ids)) or "none yet"
                raise NotFoundError(
                    f"no supernet with id {supernet_id} in this database (stored: "
                    f"{known}); give a checkpoint path or see `archsearch supernet list`"
                )
            return _supernet_dict(row)

    def list_supernets(self) -> list[dict[str, Any]]:
        with self.session() as s:
            rows = s.scalars(select(SupernetModel).order_by(SupernetModel.id)).all()
            return [_supernet_dict(r) for r in rows]


def _supernet_dict(row: SupernetModel) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in SupernetModel.__table__.columns}
