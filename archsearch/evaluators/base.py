"""The evaluator interface: ``evaluate(archs) -> scores``, each metric named and directed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from archsearch.cost.metrics import COST_METRICS, Direction, Metric
from archsearch.spec import Architecture

__all__ = ["COST_METRICS", "Direction", "Evaluator", "Metric"]

if TYPE_CHECKING:
    from archsearch.db import Store
    from archsearch.spaces import Space


class Evaluator(ABC):
    """Scores architectures.

    Subclasses set :attr:`name`, :attr:`metrics` and :attr:`cheap`, take their options as
    keyword-only constructor arguments, and implement :meth:`evaluate`. The driver
    (:func:`archsearch.search.optimize`) calls ``evaluate`` once per batch of candidates that
    passed the budget filter; cheap evaluators run before expensive ones.
    """

    name: ClassVar[str]
    metrics: ClassVar[tuple[Metric, ...]]
    cheap: ClassVar[bool] = True
    """Analytic or near-instant (True), or needing training/measurement (False)."""
    dynamic_metrics: ClassVar[bool] = False
    """True when an instance's :attr:`metrics` depend on its options (a table's columns); the
    class then lists none, and runs resolve such metrics on the configured instance."""
    on_step: Callable[[str, int, int], None] | None = None
    """``(candidate label, steps done, total steps)``: set by the CLI to draw a progress bar
    per candidate; long-running evaluators (training) call it as they go. None: no reports."""
    on_report: Callable[[int, dict[str, float]], None] | None = None
    """``(step, values)``: intermediate results of the candidate being evaluated (training:
    held-out accuracy and loss after each epoch but the last), set by the Ray Tune trainable
    so that schedulers such as ASHA can stop bad candidates early; they are stored too.
    Reporting must not change the final scores. None: no reports."""

    @abstractmethod
    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        """One ``{metric: value}`` per architecture, in order; NaN/inf values are allowed.

        Called by the driver with a batch of candidates. Raise only for failures of the whole
        batch; a value that cannot be computed for one architecture should be NaN.
        """

    @classmethod
    def option_names(cls) -> frozenset[str]:
        """The keyword options the constructor accepts (for CLI flags and error messages)."""
        import inspect

        params = inspect.signature(cls.__init__).parameters.values()
        return frozenset(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)

    def check_space(self, space: Space) -> None:
        """Refuses (with a :class:`~archsearch.errors.UserError`) a space whose members this
        evaluator cannot score; called by the run configuration before anything runs. Most
        evaluators score any architecture and keep this default."""
        return None

    def bind(self, store: Store) -> None:
        """Gives the evaluator the run's store; called by the driver before the first use.

        Evaluators that keep data in the database (latency tables) use it; others ignore it.
        """
        return None

    def config(self) -> dict[str, object]:
        """The options this evaluator was created with (stored with the run)."""
        return {}

    def device_used(self) -> str | None:
        """The device this evaluator computes its scores on (``cpu``, ``cuda:0 (NVIDIA
        H200)``), stored with every trial it scores; None for evaluators with no device choice
        (counts, tables, look-up latency)."""
        return None

    def notes(self) -> list[str]:
        """What a run should tell the user about this evaluator before it starts (e.g. the
        device it trains on)."""
        return []
