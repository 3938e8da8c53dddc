"""Random search: uniform samples of the space (Bergstra & Bengio, JMLR 2012; Li & Talwalkar,
"Random Search and Reproducibility for NAS", UAI 2019, as the baseline every strategy must beat).
"""

from __future__ import annotations

from collections.abc import Sequence

from archsearch.solvers.base import Result, Strategy
from archsearch.spec import Architecture


class RandomSearch(Strategy):
    """Independent samples of the space, each new and within the budget."""

    name = "random"
    restorable = True

    def propose(self, n: int) -> list[Architecture]:
        return self._fill(n, lambda: self.space.sample(self.rng))

    def tell(self, results: Sequence[Result]) -> None:
        """Random search learns nothing."""
