"""Constraints a space file declares as data, checked on every member before it is built.

A constraint sees the *draft* of a candidate (stem, stages and head as blocks, before the
shapes are propagated) and returns why the draft breaks it, or None. In YAML::

    constraints:
      - non_decreasing_width
      - heads_divide_width
      - total_depth: {min: 4, max: 16}

Plugins register more through the entry-point group ``archsearch.constraints``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from archsearch.registry import Registry
from archsearch.spec import Block, Stage


@dataclass(frozen=True)
class Draft:
    """A candidate's blocks, before the :class:`~archsearch.spec.Architecture` is created."""

    stem: Block
    stages: tuple[Stage, ...]
    head: Block


class Constraint(ABC):
    """A rule every member of a space satisfies. Options are keyword-only arguments."""

    name: ClassVar[str]

    @abstractmethod
    def check(self, draft: Draft) -> str | None:
        """Why ``draft`` breaks the rule, or None. Called by the space on every candidate."""

    def describe(self) -> str:
        return self.name

    def config(self) -> dict[str, Any]:
        return {}


class NonDecreasingWidth(Constraint):
    """Stage widths never decrease from one stage to the next."""

    name = "non_decreasing_width"

    def check(self, draft: Draft) -> str | None:
        widths = [s.width for s in draft.stages]
        for i in range(1, len(widths)):
            if widths[i] < widths[i - 1]:
                return (
                    f"non_decreasing_width: stage {i + 1} width {widths[i]} < stage {i} width "
                    f"{widths[i - 1]}"
                )
        return None


class HeadsDivideWidth(Constraint):
    """Every attention block's number of heads divides its width."""

    name = "heads_divide_width"

    def check(self, draft: Draft) -> str | None:
        for i, stage in enumerate(draft.stages):
            for j, b in enumerate(stage.blocks):
                heads = b.params.get("heads")
                if isinstance(heads, int) and b.out_channels % heads:
                    return (
                        f"heads_divide_width: stages[{i}].blocks[{j}] ({b.type}) has "
                        f"heads={heads}, which does not divide its width {b.out_channels}"
                    )
        return None


class TotalDepth(Constraint):
    """The total number of blocks over all stages lies in ``[min, max]``."""

    name = "total_depth"

    def __init__(self, *, min: int | None = None, max: int | None = None) -> None:
        self.min, self.max = min, max

    def check(self, draft: Draft) -> str | None:
        depth = sum(s.depth for s in draft.stages)
        if self.min is not None and depth < self.min:
            return f"total_depth: {depth} blocks < min {self.min}"
        if self.max is not None and depth > self.max:
            return f"total_depth: {depth} blocks > max {self.max}"
        return None

    def describe(self) -> str:
        return f"total_depth in [{self.min or 0}, {self.max or 'inf'}]"

    def config(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max}


CONSTRAINTS: Registry[type[Constraint]] = Registry(
    "constraint", entry_point_group="archsearch.constraints"
)
for _c in (NonDecreasingWidth, HeadsDivideWidth, TotalDepth):
    CONSTRAINTS.register(_c.name, _c)
