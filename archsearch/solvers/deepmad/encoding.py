"""DeepMAD's design: the discrete options, depths and continuous widths of a space, and
their encoding (see :mod:`archsearch.solvers.deepmad`)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from archsearch.errors import NotInSpaceError, SpecError
from archsearch.spaces import Space, make_block, resolve_choices, with_fixed
from archsearch.spec import Architecture

if TYPE_CHECKING:
    pass


MODELLED = ("macs", "params", "activations", "rho")
"""Metrics whose bounds the program models; other bounds are checked on the exact design."""

Depths = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class Slot:
    """A continuous variable: a width, or an integer parameter given as a range."""

    name: str
    grid: tuple[int, ...]  # legal values, ascending
    labels: tuple[str, ...]  # the space labels it sets (one per block slot when not shared)

    @property
    def lo(self) -> float:
        return math.log(self.grid[0])

    @property
    def hi(self) -> float:
        return math.log(self.grid[-1])

    def nearest(self, value: float) -> int:
        """The index of the legal value nearest to ``value`` in log scale."""
        logs = np.log(np.array(self.grid, dtype=float))
        return int(np.argmin(np.abs(logs - math.log(max(value, 1e-9)))))


Option = tuple[str, tuple[tuple[str, Any], ...]]
"""A slot's discrete choice: block type and its discrete parameter values."""


@dataclass(frozen=True)
class LayerKey:
    """One place of the space that takes an option: stem, ``s<i>.down``, stage blocks, head."""

    key: str
    prefixes: tuple[str, ...]  # label prefixes (a stage's block slots share one option)
    stage: int | None  # stage index, None for stem and head
    options: tuple[Option, ...]
    params: dict[str, dict[str, int]]  # per type: continuous parameter -> slot index


@dataclass
class Design:
    """A point of the discrete-continuous program; ``values`` hold grid indices."""

    options: dict[str, Option]
    depths: list[int]
    values: list[int]

    def copy(self) -> Design:
        return Design(dict(self.options), list(self.depths), list(self.values))

    def key(self) -> tuple[Any, ...]:
        return (tuple(sorted(self.options.items())), tuple(self.depths), tuple(self.values))


@dataclass(frozen=True)
class Site:
    """One layer of the network as the program sees it (a first block, a repeated block...).

    ``c_in`` and ``out`` are a slot index or a constant channel count (``-1 - channels``).
    """

    key: str  # the LayerKey it takes its option from
    role: str
    stage: int | None
    repeat: bool  # True: the stage's blocks after the first (multiplicity depth - 1)
    c_in: int
    out: int
    fixed: tuple[tuple[str, Any], ...]
    in_hw: tuple[int, int]


def _const(channels: int) -> int:
    return -1 - channels


class Encoding:
    """The space seen as slots, layer keys and sites; decodes designs into architectures."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.slots: list[Slot] = []
        self.layer_keys: dict[str, LayerKey] = {}
        if space.stem.widths:
            self.stem_slot = self._slot("stem.width", space.stem.widths, ("stem.width",))
        else:
            self.stem_slot = -1
        self.width_slots: list[int] = []
        for so in space.stages:
            idx = self._slot(f"{so.name}.width", so.widths, (f"{so.name}.width",))
            self.width_slots.append(idx)
        if self.stem_slot < 0:
            self.stem_slot = self.width_slots[0]
        self._layer("stem", ("stem",), None, space.stem.types)
        for i, so in enumerate(space.stages):
            if so.downsample is not None:
                self._layer(f"{so.name}.down", (f"{so.name}.down",), i, so.downsample.types)
            prefixes = (
                (so.name,)
                if so.shared
                else tuple(f"{so.name}.b{j}" for j in range(max(so.depths)))
            )
            self._layer(so.name, prefixes, i, so.blocks.types)
        self._layer("head", ("head",), None, space.head.types)
        self.depth_choices = [tuple(so.depths) for so in space.stages]

    def _slot(self, name: str, values: Sequence[int], labels: tuple[str, ...]) -> int:
        self.slots.append(Slot(name, tuple(sorted(values)), labels))
        return len(self.slots) - 1

    def _layer(
        self,
        key: str,
        prefixes: tuple[str, ...],
        stage: int | None,
        types: Mapping[str, Mapping[str, tuple[Any, ...]]],
    ) -> None:
        options: list[Option] = []
        params: dict[str, dict[str, int]] = {}
        for t, choices in types.items():
            discrete = {}
            params[t] = {}
            for n, values in choices.items():
                if _is_range(values):
                    labels = tuple(f"{p}.{t}.{n}" for p in prefixes)
                    params[t][n] = self._slot(f"{key}.{t}.{n}", values, labels)
                else:
                    discrete[n] = values
            names = sorted(discrete)
            for combo in itertools.product(*(discrete[n] for n in names)):
                options.append((t, tuple(zip(names, combo, strict=True))))
        self.layer_keys[key] = LayerKey(key, prefixes, stage, tuple(options), params)

    # -- designs <-> architectures ---------------------------------------------------

    def assignment(self, design: Design) -> dict[str, Any]:
        a: dict[str, Any] = {}
        for slot, v in zip(self.slots, design.values, strict=True):
            for label in slot.labels:
                a[label] = slot.grid[v]
        for so, d in zip(self.space.stages, design.depths, strict=True):
            a[f"{so.name}.depth"] = d
        for key, lk in self.layer_keys.items():
            t, chosen = design.options[key]
            for prefix in lk.prefixes:
                a[f"{prefix}.type"] = t
                for n, v in chosen:
                    a[f"{prefix}.{t}.{n}"] = v
                for n, s in lk.params[t].items():
                    a[f"{prefix}.{t}.{n}"] = self.slots[s].grid[design.values[s]]
        return a

    def decode(self, design: Design) -> Architecture | None:
        try:
            return self.space.decode(self.assignment(design))
        except (NotInSpaceError, SpecError):
            return None

    def from_arch(self, arch: Architecture) -> Design:
        """The design of a member whose stages repeat one option (raises NotInSpaceError)."""
        a = self.space.encode(arch)
        options = {}
        for key, lk in self.layer_keys.items():
            prefix = lk.prefixes[0]
            t = a[f"{prefix}.type"]
            chosen = tuple(
                (n, a[f"{prefix}.{t}.{n}"])
                for n in sorted(self.space_types(key)[t])
                if n not in lk.params[t]
            )
            options[key] = (t, chosen)
        values = []
        for slot in self.slots:
            label = next((lb for lb in slot.labels if lb in a), None)
            v = a[label] if label is not None else slot.grid[0]
            values.append(slot.grid.index(v))
        depths = [a[f"{so.name}.depth"] for so in self.space.stages]
        design = Design(options, depths, values)
        if self.decode(design) != arch:
            raise NotInSpaceError("the architecture's stages do not repeat one option each")
        return design

    def space_types(self, key: str) -> Mapping[str, Mapping[str, tuple[Any, ...]]]:
        lk = self.layer_keys[key]
        if key == "stem":
            return self.space.stem.types
        if key == "head":
            return self.space.head.types
        so = self.space.stages[lk.stage or 0]
        if key.endswith(".down") and so.downsample is not None:
            return so.downsample.types
        return so.blocks.types

    # -- sites -----------------------------------------------------------------------

    def sites(self, design: Design) -> list[Site]:
        """The network's layers for this design's options (spatial sizes by propagation)."""
        sp = self.space
        c0, h, w = sp.input_shape
        out: list[Site] = []

        def place(
            key: str,
            role: str,
            stage: int | None,
            rep: bool,
            c_in: int,
            o: int,
            fixed: tuple[tuple[str, Any], ...] = (),
        ) -> None:
            nonlocal h, w
            site = Site(key, role, stage, rep, c_in, o, fixed, (h, w))
            block = self.block(site, design, self.mid_values(design))
            _, h, w = block.family.out_shape(
                (self.channels(c_in, design), h, w), block.out_channels, block.params
            )
            out.append(site)

        place("stem", "stem", None, False, _const(c0), self.stem_slot)
        prev = self.stem_slot
        for i, so in enumerate(sp.stages):
            ws = self.width_slots[i]
            if so.downsample is not None:
                place(f"{so.name}.down", "downsample", i, False, prev, ws)
                prev = ws
            place(so.name, "block", i, False, prev, ws, so.first)
            place(so.name, "block", i, True, ws, ws)
            prev = ws
        place("head", "head", None, False, prev, _const(sp.num_classes))
        return out

    def log_values(self, design: Design) -> np.ndarray:
        """The design's widths as the program's variables (natural logs)."""
        return np.log([float(v) for v in self.mid_values(design)])

    def mid_values(self, design: Design) -> list[int]:
        return [s.grid[v] for s, v in zip(self.slots, design.values, strict=True)]

    def channels(self, ref: int, design: Design) -> int:
        return -1 - ref if ref < 0 else self.slots[ref].grid[design.values[ref]]

    def block(self, site: Site, design: Design, values: Sequence[int]) -> Any:
        """The spec Block of ``site`` with slot values ``values`` (actual widths)."""
        t, chosen = design.options[site.key]
        c_in = -1 - site.c_in if site.c_in < 0 else values[site.c_in]
        o = -1 - site.out if site.out < 0 else values[site.out]
        params = dict(chosen)
        for n, s in self.layer_keys[site.key].params[t].items():
            params[n] = values[s]
        return make_block(t, o, with_fixed(resolve_choices(t, params, c_in, o), site.fixed))


def nearest(choices: Sequence[int], x: float) -> int:
    return min(choices, key=lambda v: abs(v - x))


def _is_range(values: tuple[Any, ...]) -> bool:
    return len(values) > 8 and all(isinstance(v, int) and not isinstance(v, bool) for v in values)
