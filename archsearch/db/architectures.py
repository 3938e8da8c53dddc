"""Architectures in the store: unique by digest, with their exact costs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from archsearch.blocks import Cost
from archsearch.cost.metrics import COST_METRICS
from archsearch.db.engine import (
    StoreBase,
    _from_db,
    display_url,
)
from archsearch.db.models import (
    ArchitectureModel,
    TrialModel,
    utcnow,
)
from archsearch.errors import NotFoundError, StoreError, UserError
from archsearch.spec import Architecture

COST_NAMES = tuple(m.name for m in COST_METRICS)


@dataclass(frozen=True)
class ArchitectureInfo:
    """One architecture with its costs and every trial that evaluated it."""

    digest: str
    spec: str
    cost: Cost
    trials: list[dict[str, Any]]


class ArchitecturesStore(StoreBase):
    """Architectures, shared by every run (digest unique)."""

    def _upsert_architectures(
        self, s: Session, candidates: Sequence[tuple[Architecture, Cost]]
    ) -> dict[str, int]:
        rows = {
            arch.digest: {
                "digest": arch.digest,
                "spec": arch.to_json(),
                "params": cost.params,
                "macs": cost.macs,
                "activations": cost.activations,
                "created_at": utcnow(),
            }
            for arch, cost in candidates
        }
        if self.dialect in ("sqlite", "postgresql"):
            from sqlalchemy.dialects import postgresql, sqlite

            insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
            s.execute(
                insert(ArchitectureModel)
                .values(list(rows.values()))
                .on_conflict_do_nothing(index_elements=["digest"])
            )
        else:  # other backends: insert what is missing (the unique digest still guards)
            existing = set(
                s.scalars(
                    select(ArchitectureModel.digest).where(ArchitectureModel.digest.in_(rows))
                )
            )
            s.add_all(ArchitectureModel(**row) for d, row in rows.items() if d not in existing)
            s.flush()
        found = s.execute(
            select(ArchitectureModel.digest, ArchitectureModel.id).where(
                ArchitectureModel.digest.in_(list(rows))
            )
        )
        return {d: i for d, i in found}

    def architecture(self, digest: str) -> ArchitectureInfo:
        """The architecture whose digest is or starts with ``digest`` (at least 6 characters).

        Raises:
            StoreError: no architecture, or several, match.
        """
        prefix = digest.strip().lower()
        if len(prefix) < 6 or any(c not in "0123456789abcdef" for c in prefix):
            raise UserError(
                f"digest {digest!r}: give at least 6 hex characters of an architecture's digest"
            )
        with self.session() as s:
            found = list(
                s.scalars(
                    select(ArchitectureModel)
                    .where(ArchitectureModel.digest.startswith(prefix))
                    .limit(5)
                )
            )
            if not found:
                raise NotFoundError(
                    f"no architecture with digest {prefix!r} in {display_url(self.url)}"
                )
            if len(found) > 1:
                raise StoreError(
                    f"digest {prefix!r} is ambiguous: "
                    f"{', '.join(a.digest[:16] for a in found)}; give more characters"
                )
            a = found[0]
            trials = []
            for t in s.scalars(
                select(TrialModel)
                .where(TrialModel.architecture_id == a.id)
                .order_by(TrialModel.run_id, TrialModel.number)
            ):
                trials.append(
                    {
                        "run": t.run_id,
                        "trial": t.number,
                        "state": t.state,
                        "scores": {sc.metric: _from_db(sc.value) for sc in t.scores},
                    }
                )
            return ArchitectureInfo(
                a.digest, a.spec, Cost(a.params, a.macs, a.activations), trials
            )
