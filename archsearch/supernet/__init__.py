"""Weight-sharing supernets (ViT-ResNAS): the model, its training and checkpoints.

See :mod:`archsearch.supernet.model` and :mod:`archsearch.supernet.training`; the ``supernet``
evaluator (:mod:`archsearch.supernet.score`) scores members with inherited weights and
the ``supernet`` strategy (:mod:`archsearch.solvers.supernet_evolution`) searches on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archsearch.supernet.model import FORMAT, Supernet, SupernetError, space_fingerprint
    from archsearch.supernet.training import (
        Checkpoint,
        SupernetConfig,
        load_checkpoint,
        member_accuracy,
        train_supernet,
    )

_LAZY = {
    "FORMAT": "model",
    "Supernet": "model",
    "SupernetError": "model",
    "space_fingerprint": "model",
    "Checkpoint": "training",
    "SupernetConfig": "training",
    "load_checkpoint": "training",
    "member_accuracy": "training",
    "train_supernet": "training",
}


def __getattr__(name: str) -> Any:
    """Imports the model and training modules (and torch) on first use, so that the supernet
    score's registration, or ``archsearch --help``, does not."""
    if name not in _LAZY:
        raise AttributeError(f"module 'archsearch.supernet' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"archsearch.supernet.{_LAZY[name]}"), name)


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
