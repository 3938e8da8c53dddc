"""The seed zoo: the networks of the papers archsearch grew from, as architecture specs.

Each entry is a YAML file in this package (``<name>.yaml``): the paper, the reference
implementation, its exact parameter count at 224x224 with a 1000-class head, the paper's
GFLOPs (1 FLOP = 1 multiply-accumulate), notes on details, and the ``spec``, loaded through the
same machinery as any architecture. ``archsearch.zoo.get("convnext_t")`` returns the
:class:`~archsearch.spec.Architecture`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from archsearch.cost import count
from archsearch.errors import SpecError, UnknownNameError
from archsearch.spec import Architecture

if TYPE_CHECKING:  # duck-typed: the zoo sits below the evaluators
    from archsearch.evaluators import Evaluator

ZOO_DIR = Path(__file__).parent


class _EntryModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    paper: str
    code: str
    params: int
    paper_params: str
    paper_gflops: float
    paper_gflops_digits: int | None = None
    gflops_note: str | None = None
    notes: str = ""
    spec: dict[str, Any]


@dataclass(frozen=True)
class ZooEntry:
    """A seed network with its provenance and the figures it is checked against.

    Attributes:
        name: The zoo name (``convnext_t``).
        paper: The paper that introduced it.
        code: The reference implementation whose parameter count is reproduced.
        params: That implementation's exact parameter count (224x224, 1000 classes).
        paper_params: The parameter count as the paper prints it.
        paper_gflops: GFLOPs as the paper prints them (1 FLOP = 1 MAC).
        paper_gflops_digits: The decimals the paper prints them with, when the float does not
            say (``1.0`` for a paper printing "1G": 0); None: the float's own decimals.
        gflops_note: Why archsearch's count differs from the paper by more than 3%, if it does.
        notes: Details of the expression.
        arch: The architecture.
    """

    name: str
    paper: str
    code: str
    params: int
    paper_params: str
    paper_gflops: float
    paper_gflops_digits: int | None
    gflops_note: str | None
    notes: str
    arch: Architecture


@cache
def _load(name: str) -> ZooEntry:
    path = ZOO_DIR / f"{name}.yaml"
    try:
        model = _EntryModel.model_validate(yaml.safe_load(path.read_text()))
        arch = Architecture.from_dict(model.spec)
    except (ValidationError, SpecError) as e:
        raise SpecError(f"zoo entry {path.name}: {e}") from None
    fields = model.model_dump(exclude={"spec"})
    return ZooEntry(**fields, arch=arch)


def names() -> list[str]:
    """The zoo's entry names, sorted."""
    return sorted(p.stem for p in ZOO_DIR.glob("*.yaml"))


def entry(name: str) -> ZooEntry:
    """The zoo entry ``name``; unknown names raise an error listing the entries."""
    if name not in names():
        raise UnknownNameError("zoo network", name, names())
    return _load(name)


def entries() -> list[ZooEntry]:
    return [entry(n) for n in names()]


def get(name: str) -> Architecture:
    """The architecture of zoo entry ``name`` (e.g. ``"convnext_t"``)."""
    return entry(name).arch


def reference_points(
    evaluators: Sequence[Evaluator],
    *,
    input_shape: tuple[int, int, int] = (3, 224, 224),
    num_classes: int = 1000,
) -> list[dict[str, Any]]:
    """The zoo networks as rows comparable with a run's trials: costs and scores.

    Only networks with the given input shape and classes are included. Scores come from the
    cheap evaluators; the metrics of expensive ones (training) are NaN, as nothing is trained,
    and so are a cheap evaluator's when the network cannot take its input (a proxy scores a
    smaller image, on which Swin-T's windows no longer fit).
    """
    rows = []
    for e in entries():
        if e.arch.input_shape != tuple(input_shape) or e.arch.num_classes != num_classes:
            continue
        row: dict[str, Any] = {"zoo": e.name, "digest": e.arch.digest, **count(e.arch).as_dict()}
        for ev in evaluators:
            scores: dict[str, float] = {m.name: math.nan for m in ev.metrics}
            # a network that cannot take a cheap evaluator's input keeps NaN there
            with contextlib.suppress(SpecError):
                if ev.cheap:
                    scores = ev.evaluate([e.arch])[0]
            row.update(scores)
        rows.append(row)
    return rows


__all__ = ["ZooEntry", "entries", "entry", "get", "names", "reference_points"]
