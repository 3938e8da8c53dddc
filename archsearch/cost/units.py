"""Budgets and units.

One FLOP is one multiply-accumulate, as the seed papers report their figures (ConvNeXt-T =
4.5 GFLOPs): ``1GFLOP``, ``1GMAC`` and ``1e9FLOP`` are the same budget. A number without a
unit is a parameter count: ``5M`` means five million parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from archsearch.blocks import Cost
from archsearch.errors import BudgetError
from archsearch.limits import MAX_BUDGET

FLOP_CONVENTION = "1 FLOP = 1 multiply-accumulate (MAC), as the seed papers report"

_PREFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BUDGET = re.compile(
    r"^\s*(?P<num>\d+(?:\.\d*)?|\.\d+)(?:e(?P<exp>[+-]?\d+))?\s*(?P<prefix>[kmgt]?)\s*"
    r"(?P<unit>flops?|macs?|params?|p)?\s*$",
    re.IGNORECASE,
)
BUDGET_EXAMPLES = "1GFLOP, 500MFLOP, 1.3GMAC (MACs) or 5M, 25.55M (parameters)"


@dataclass(frozen=True)
class Budget:
    """Upper bounds on MACs and parameters; None means unbounded."""

    macs: int | None = None
    params: int | None = None

    def admits(self, cost: Cost) -> bool:
        return (self.macs is None or cost.macs <= self.macs) and (
            self.params is None or cost.params <= self.params
        )

    def as_dict(self) -> dict[str, int | None]:
        return {"macs": self.macs, "params": self.params}

    def __str__(self) -> str:
        parts = []
        if self.macs is not None:
            parts.append(f"MACs <= {format_si(self.macs)}FLOP")
        if self.params is not None:
            parts.append(f"params <= {format_si(self.params)}")
        return ", ".join(parts) or "unbounded"

    @classmethod
    def parse(cls, values: Iterable[str]) -> Budget:
        """Parses budget strings, each possibly comma-separated: ``["1GFLOP,5M"]``.

        Raises:
            BudgetError: a string is not a budget, or one kind is given twice.
        """
        found: dict[str, int] = {}
        for value in values:
            if not value.strip(" ,"):
                raise BudgetError(
                    f"budget: {value!r} is empty; write e.g. {BUDGET_EXAMPLES}, or give no "
                    "budget for no bound"
                )
            for part in value.split(","):
                if not part.strip():
                    continue
                kind, amount = parse_budget(part)
                if kind in found:
                    raise BudgetError(
                        f"budget: {kind} given twice ({format_si(found[kind])} and "
                        f"{part.strip()}); give one MACs budget and one parameter budget at most"
                    )
                found[kind] = amount
        return cls(macs=found.get("macs"), params=found.get("params"))


def parse_budget(text: str) -> tuple[str, int]:
    """Parses one budget: returns ``("macs", n)`` or ``("params", n)``.

    Case-insensitive; prefixes k, M, G, T; units FLOP(s) or MAC(s) (the same thing here) or
    none/P/params for parameters. Examples: ``1GFLOP``, ``500mflops``, ``1.3GMAC``, ``5M``.
    """
    m = _BUDGET.match(text)
    if not m:
        raise BudgetError(
            f"budget: {text.strip()!r} is not a budget; write e.g. {BUDGET_EXAMPLES} "
            f"({FLOP_CONVENTION})"
        )
    unit = (m["unit"] or "").lower()
    kind = "macs" if unit.startswith(("flop", "mac")) else "params"
    # float() reads any exponent (1e999999 is inf) without computing a huge integer first
    value = float(f"{m['num']}e{m['exp'] or 0}") * _PREFIX[m["prefix"].lower()]
    if not value <= MAX_BUDGET:
        raise BudgetError(
            f"budget: {text.strip()[:40]!r} is out of range; a budget is at most "
            f"{MAX_BUDGET:.0e} {kind}"
        )
    amount = round(value)
    if amount < 1:
        raise BudgetError(f"budget: {text.strip()[:40]!r} must be at least 1 {kind}")
    return kind, amount


def format_si(n: float, digits: int = 3) -> str:
    """``1234567 -> '1.23M'``; used wherever counts are shown."""
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.{digits}g}{prefix}"
    return f"{n:.{digits}g}"
