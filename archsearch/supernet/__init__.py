"""Weight-sharing supernets (ViT-ResNAS): the model, its training and checkpoints.

See :mod:`archsearch.supernet.model` and :mod:`archsearch.supernet.training`; the ``supernet``
evaluator (:mod:`archsearch.supernet.score`) scores members with inherited weights and
the ``supernet`` strategy (:mod:`archsearch.solvers.supernet_evolution`) searches on it.
"""

from __future__ import annotations

from archsearch.supernet.model import FORMAT, Supernet, SupernetError, space_fingerprint
from archsearch.supernet.training import (
    Checkpoint,
    SupernetConfig,
    load_checkpoint,
    member_accuracy,
    train_supernet,
)

__all__ = [
    "FORMAT",
    "Checkpoint",
    "Supernet",
    "SupernetConfig",
    "SupernetError",
    "load_checkpoint",
    "member_accuracy",
    "space_fingerprint",
    "train_supernet",
]
