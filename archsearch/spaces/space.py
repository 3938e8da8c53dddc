"""The search space: a tree of labelled choices with constraints, decoded into Architectures.

Follows NNI's ``nni.mutable`` model: a space is a set of labelled categorical choices; an
*assignment* ``{label: value}`` decodes into an :class:`~archsearch.spec.Architecture`, and
:meth:`Space.encode` inverts that. Strategies work on architectures through
:meth:`~Space.sample`, :meth:`~Space.mutate` and :meth:`~Space.crossover`, or on the flat view
:meth:`~Space.choices` (a fixed set of labels, the same for every member, so that vector-based
strategies never see conditional parameters).

Labels, for a stage named ``s2``:

* ``s2.depth``, ``s2.width``;
* ``s2.down.type`` and ``s2.down.<type>.<param>`` for the downsample;
* ``s2.b<j>.type`` and ``s2.b<j>.<type>.<param>`` for block ``j`` (``j`` up to the largest
  depth; labels of blocks beyond the chosen depth, and of types not chosen, are inactive);
  in a ``shared`` stage, ``s2.type`` and ``s2.<type>.<param>`` for all its blocks; in stages
  sharing a named group (``shared: cell``), ``cell.type`` and ``cell.<type>.<param>`` for
  every block of all of them;

and likewise ``stem.*`` (with ``stem.width`` when the stem has its own widths) and ``head.*``.

Everything here is torch-free and deterministic given a ``random.Random``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from archsearch.blocks import Role, Shape, get_block
from archsearch.errors import NotInSpaceError, SpaceError, SpecError, UnknownNameError, UserError
from archsearch.files import read_text
from archsearch.limits import MAX_BLOCK_OPTIONS, MAX_INT_PARAM
from archsearch.registry import check_kwargs
from archsearch.spaces.constraints import CONSTRAINTS, Constraint, Draft
from archsearch.spaces.schema import (
    IntRange,
    LayerOptionsModel,
    SourceMap,
    SpaceModel,
    parse_space_yaml,
    widths_of,
)
from archsearch.spec import Architecture, Block, Params, Stage

Assignment = dict[str, Any]


@dataclass(frozen=True)
class Choice:
    """One labelled categorical choice of the flat view."""

    label: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Membership:
    """The answer of :meth:`Space.contains`: truthy when contained, else with the reason."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class SpaceSize:
    """How many architectures a space holds.

    Attributes:
        total: Distinct assignments of the active choices, constraints ignored (exact).
        feasible_fraction: Share of those that satisfy the constraints and build, estimated
            by uniform sampling over ``total``.
    """

    total: int
    feasible_fraction: float
    samples: int = 2000

    @property
    def feasible(self) -> float:
        return self.total * self.feasible_fraction

    @property
    def log10(self) -> float:
        return math.log10(max(self.feasible, 1.0))

    @property
    def upper_bound(self) -> bool:
        """True when no sample was feasible: :attr:`log10_estimate` is then only a bound."""
        return self.feasible_fraction == 0 and self.total > 0

    @property
    def log10_estimate(self) -> float:
        """``log10`` of the feasible count, rounded to 2 decimals; when no sample was
        feasible, the upper bound the sampling gives (fewer than one in ``samples``), never a
        misleading 0."""
        if self.upper_bound:
            return round(math.log10(max(self.total / self.samples, 1.0)), 2)
        return round(self.log10, 2)

    @property
    def log10_text(self) -> str:
        """:attr:`log10_estimate` for people: ``"28.81"`` or ``"<26.64"``."""
        return f"{'<' if self.upper_bound else ''}{self.log10_estimate:.2f}"


@dataclass(frozen=True)
class LayerOptions:
    """The allowed types of one slot and, per type, each parameter's (or alias's) choices."""

    role: Role
    types: dict[str, dict[str, tuple[Any, ...]]]
    widths: tuple[int, ...] | None = None

    def count(self) -> int:
        return sum(math.prod(len(v) for v in params.values()) for params in self.types.values())


@dataclass(frozen=True)
class StageOptions:
    name: str
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    downsample: LayerOptions | None
    blocks: LayerOptions
    shared: bool
    first: tuple[tuple[str, Any], ...] = ()
    """Fixed parameters of the stage's first block (e.g. its stride), over its choices."""
    group: str | None = None
    """The name of the choices the stage's blocks share with other stages' (``shared: cell``)."""

    def prefix(self, j: int) -> str:
        """The label prefix of block ``j``'s choices."""
        if self.group is not None:
            return self.group
        return self.name if self.shared else f"{self.name}.b{j}"


@lru_cache(maxsize=65536)
def make_block(block_type: str, out: int, items: tuple[tuple[str, Any], ...]) -> Block:
    """The block of type ``block_type`` with ``out`` channels and parameters ``items``
    (sorted name-value pairs), cached: strategies build the same blocks again and again."""
    return Block(block_type, out, Params(dict(items)))


def resolve_choices(
    block_type: str, chosen: Mapping[str, Any], c_in: int, out: int
) -> tuple[tuple[str, Any], ...]:
    """A slot's chosen values as block parameters, aliases (e.g. ``expand``) resolved."""
    family = get_block(block_type)
    params: dict[str, Any] = {}
    later = []
    try:
        for n, v in chosen.items():
            alias = family.alias(n)
            if alias is None:
                params[n] = v
            elif alias.of is None:
                params[alias.target] = alias.resolve(c_in, out, v)
            else:
                later.append((alias, v))
        for alias, v in later:  # ratios of another parameter, once that one is resolved
            params[alias.target] = alias.resolve(int(params[str(alias.of)]), out, v)
    except (ArithmeticError, ValueError) as e:  # a ratio of 0 (head_dim: 0), say
        raise SpecError(f"{block_type}: cannot resolve {dict(chosen)}: {e}") from None
    return tuple(sorted(params.items()))


class Space:
    """A declarative search space. Create it with :func:`archsearch.load_space`.

    Args:
        name: The space's name.
        stem: Options of the stem.
        stages: Options of each stage.
        head: Options of the head.
        constraints: Rules every member satisfies.
        input_shape: Input shape of every member.
        num_classes: Classes of every member.
        description: One paragraph for users.
        source: The YAML text the space was read from (stored with runs).
    """

    max_tries = 1000
    """Candidates tried by sample/mutate/crossover before giving up."""

    def __init__(
        self,
        *,
        name: str,
        stem: LayerOptions,
        stages: tuple[StageOptions, ...],
        head: LayerOptions,
        constraints: tuple[Constraint, ...] = (),
        input_shape: tuple[int, int, int] = (3, 224, 224),
        num_classes: int = 1000,
        description: str = "",
        source: str | None = None,
    ) -> None:
        self.name = name
        self.stem = stem
        self.stages = stages
        self.head = head
        self.constraints = constraints
        self.input_shape = input_shape
        self.num_classes = num_classes
        self.description = description
        self.source = source
        self._labels: dict[str, tuple[Any, ...]] = {}
        self._units: dict[str, list[str]] = {}
        self._add_layer("stem", "stem", stem)
        if stem.widths is not None:
            self._add("stem", "stem.width", stem.widths)
        for so in stages:
            self._add(so.name, f"{so.name}.depth", so.depths)
            self._add(so.name, f"{so.name}.width", so.widths)
            if so.downsample is not None:
                self._add_layer(so.name, f"{so.name}.down", so.downsample)
            slots = dict.fromkeys(so.prefix(j) for j in range(max(so.depths)))
            for prefix in slots:
                if f"{prefix}.type" not in self._labels:  # a group's choices are added once
                    self._add_layer(so.group or so.name, prefix, so.blocks)
        self._add_layer("head", "head", head)

    def _add(self, unit: str, label: str, values: Iterable[Any]) -> None:
        self._labels[label] = tuple(values)
        self._units.setdefault(unit, []).append(label)

    def _add_layer(self, unit: str, prefix: str, opts: LayerOptions) -> None:
        self._add(unit, f"{prefix}.type", opts.types)
        for t, params in opts.types.items():
            for n, values in params.items():
                self._add(unit, f"{prefix}.{t}.{n}", values)

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<space>") -> Space:
        """Parses a space file's text; errors are ``source:line: message``."""
        model, smap = parse_space_yaml(text, source)
        return _from_model(model, smap, text)

    @classmethod
    def load(cls, path: str | Path) -> Space:
        text = read_text(path, what="space file", error=SpaceError)
        return cls.from_yaml(text, source=str(path))

    def __repr__(self) -> str:
        return f"Space({self.name!r}, stages={len(self.stages)}, labels={len(self._labels)})"

    # -- the flat view -----------------------------------------------------------------

    def choices(self) -> dict[str, Choice]:
        """Every label with more than one value: the fixed-length view for strategies."""
        return {k: Choice(k, v) for k, v in self._labels.items() if len(v) > 1}

    def fixed(self) -> dict[str, Any]:
        """Every label with a single value, and that value: with a full :meth:`choices`
        assignment, what :meth:`decode` reads."""
        return {k: v[0] for k, v in self._labels.items() if len(v) == 1}

    def labels(self) -> dict[str, tuple[Any, ...]]:
        """Every label (the choices and the fixed ones) with its values, in the order a
        decode reads them: stem, then each stage's depth, width, downsample and blocks, then
        the head."""
        return dict(self._labels)

    def largest(self) -> Architecture:
        """The member that costs the most: label by label (in :meth:`labels`' order, twice
        over), the value giving the most MACs (then parameters) among those that keep a
        member. Where slimming and contraction start by default. Cached.
        """
        cached: Architecture | None = getattr(self, "_largest", None)
        if cached is not None:
            return cached
        from archsearch.cost import count

        a: dict[str, Any] = {**self.encode(self.sample(seed=0))}
        for label, values in self._labels.items():
            a.setdefault(label, max(values, key=_size_key))
        best = self.decode(a)
        key = count(best)[:2][::-1]
        for _ in range(2):
            for label, values in self._labels.items():
                numeric = all(_size_key(v)[0] for v in values)
                ordered = sorted(values, key=_size_key, reverse=True) if numeric else values
                for v in ordered:
                    if v == a[label]:
                        if numeric:
                            break  # the largest value that keeps a member is chosen
                        continue
                    trial = {**a, label: v}
                    if label.endswith(".depth") and v > a[label]:
                        self._copy_last_block(trial, label[: -len(".depth")], a[label], v)
                    try:
                        arch = self.decode(trial)
                    except (NotInSpaceError, UserError):
                        continue
                    k = count(arch)[:2][::-1]
                    if k > key:
                        a, best, key = trial, arch, k
                    if numeric:
                        break
        self._largest = best
        return best

    def _copy_last_block(self, a: dict[str, Any], stage: str, depth: int, new: int) -> None:
        """Positions ``depth..new-1`` of ``stage`` take the choices of position ``depth-1``
        (a deeper stage repeats its last block)."""
        so = next(x for x in self.stages if x.name == stage)
        last = so.prefix(depth - 1)
        for j in range(depth, new):
            prefix = so.prefix(j)
            if prefix == last:
                continue
            for label in self._labels:
                if label.startswith(last + "."):
                    a[prefix + label[len(last) :]] = a[label]

    def decode(self, assignment: Mapping[str, Any]) -> Architecture:
        """The architecture an assignment describes (only active labels are read).

        Raises:
            NotInSpaceError: the assignment breaks a constraint or a block's rules.
            UserError: an active label is missing or has a value outside its choices.
        """
        draft = self._draft(assignment)
        for constraint in self.constraints:
            reason = constraint.check(draft)
            if reason:
                raise NotInSpaceError(reason)
        try:
            return Architecture(
                draft.stem, draft.stages, draft.head, self.input_shape, self.num_classes
            )
        except SpecError as e:
            raise NotInSpaceError(str(e)) from None

    def _value(self, a: Mapping[str, Any], label: str) -> Any:
        try:
            value = a[label]
        except KeyError:
            raise UserError(f"assignment for space {self.name!r} lacks label {label!r}") from None
        if value not in self._labels[label]:
            raise UserError(
                f"assignment: {label}={value!r} is not a choice; choose one of "
                f"{', '.join(map(str, self._labels[label]))}"
            )
        return value

    def _make(
        self,
        opts: LayerOptions,
        prefix: str,
        a: Mapping[str, Any],
        out: int,
        c_in: int,
        fixed: tuple[tuple[str, Any], ...] = (),
    ) -> Block:
        t = self._value(a, f"{prefix}.type")
        chosen = {n: self._value(a, f"{prefix}.{t}.{n}") for n in opts.types[t]}
        try:
            return make_block(t, out, with_fixed(resolve_choices(t, chosen, c_in, out), fixed))
        except SpecError as e:
            raise NotInSpaceError(f"{prefix}: {e}") from None

    def _draft(self, a: Mapping[str, Any]) -> Draft:
        first = self.stages[0].name
        stem_w = self._value(a, "stem.width" if self.stem.widths else f"{first}.width")
        stem = self._make(self.stem, "stem", a, stem_w, self.input_shape[0])
        cur = stem_w
        stages = []
        for so in self.stages:
            width = self._value(a, f"{so.name}.width")
            depth = self._value(a, f"{so.name}.depth")
            ds = None
            if so.downsample is not None:
                ds = self._make(so.downsample, f"{so.name}.down", a, width, cur)
                cur = width
            blocks = []
            for j in range(depth):
                fixed = so.first if j == 0 else ()
                blocks.append(self._make(so.blocks, so.prefix(j), a, width, cur, fixed))
                cur = width
            stages.append(Stage(tuple(blocks), ds))
        head = self._make(self.head, "head", a, self.num_classes, cur)
        return Draft(stem, tuple(stages), head)

    def encode(self, arch: Architecture) -> Assignment:
        """The assignment of active labels that decodes to ``arch``.

        Raises:
            NotInSpaceError: ``arch`` is not a member; the message says why.
        """
        for i, stage in enumerate(arch.stages):
            if stage.branches:
                raise NotInSpaceError(
                    f"stages[{i}] has branches; a space's stages are plain (one stream)"
                )
        if tuple(arch.input_shape) != self.input_shape:
            raise NotInSpaceError(
                f"input_shape {list(arch.input_shape)} differs from the space's "
                f"{list(self.input_shape)}"
            )
        if arch.num_classes != self.num_classes:
            raise NotInSpaceError(
                f"num_classes {arch.num_classes} differs from the space's {self.num_classes}"
            )
        if len(arch.stages) != len(self.stages):
            n = len(arch.stages)
            raise NotInSpaceError(
                f"{n} stage{'' if n == 1 else 's'}, but space {self.name!r} has {len(self.stages)}"
            )
        a: Assignment = {}
        c_in = self.input_shape[0]
        self._match(self.stem, "stem", arch.stem, c_in, a, "stem")
        if self.stem.widths is not None:
            self._pick(a, "stem.width", arch.stem.out_channels, "stem width")
        elif arch.stem.out_channels != arch.stages[0].width:
            raise NotInSpaceError(
                f"stem width {arch.stem.out_channels} must equal the first stage's width "
                f"{arch.stages[0].width} in space {self.name!r}"
            )
        cur = arch.stem.out_channels
        for i, (so, stage) in enumerate(zip(self.stages, arch.stages, strict=True)):
            where = f"stages[{i}]"
            self._pick(a, f"{so.name}.depth", stage.depth, f"{where} depth")
            self._pick(a, f"{so.name}.width", stage.width, f"{where} width")
            if (so.downsample is None) != (stage.downsample is None):
                need = "no downsample" if so.downsample is None else "a downsample"
                raise NotInSpaceError(f"{where}: the space's stage {so.name} has {need}")
            if so.downsample is not None and stage.downsample is not None:
                self._match(
                    so.downsample,
                    f"{so.name}.down",
                    stage.downsample,
                    cur,
                    a,
                    f"{where}.downsample",
                )
                cur = stage.downsample.out_channels
            for j, b in enumerate(stage.blocks):
                if b.out_channels != stage.width:
                    raise NotInSpaceError(
                        f"{where}.blocks[{j}]: out_channels {b.out_channels} differs from the "
                        f"stage width {stage.width}"
                    )
                if f"{so.prefix(j)}.type" not in a:  # shared choices are read once
                    self._match(so.blocks, so.prefix(j), b, cur, a, f"{where}.blocks[{j}]")
                cur = b.out_channels
        self._match(self.head, "head", arch.head, cur, a, "head")
        decoded = self.decode(a)
        if decoded != arch:
            raise NotInSpaceError(_first_difference(decoded, arch))
        return a

    def _pick(self, a: Assignment, label: str, value: Any, what: str) -> None:
        if value not in self._labels[label]:
            raise NotInSpaceError(
                f"{what} {value} is not in space {self.name!r} (choices: "
                f"{', '.join(map(str, self._labels[label]))})"
            )
        a[label] = value

    def _match(
        self, opts: LayerOptions, prefix: str, block: Block, c_in: int, a: Assignment, path: str
    ) -> None:
        if block.type not in opts.types:
            raise NotInSpaceError(
                f"{path}: block type {block.type!r} is not allowed here (allowed: "
                f"{', '.join(opts.types)})"
            )
        a[f"{prefix}.type"] = block.type
        family = get_block(block.type)
        for n, values in opts.types[block.type].items():
            label = f"{prefix}.{block.type}.{n}"
            alias = family.alias(n)
            if alias is None:
                if block.params[n] not in values:
                    raise NotInSpaceError(
                        f"{path} ({block.type}): {n}={block.params[n]!r} is not among the "
                        f"space's choices {list(values)}"
                    )
                a[label] = block.params[n]
                continue
            target = block.params[alias.target]
            base = c_in if alias.of is None else int(block.params[alias.of])
            match = [v for v in values if alias.resolve(base, block.out_channels, v) == target]
            if not match:
                raise NotInSpaceError(
                    f"{path} ({block.type}): {alias.target}={target!r} matches no {n} in "
                    f"{list(values)} (in_channels {c_in}, out_channels {block.out_channels})"
                )
            a[label] = match[0]

    def contains(self, arch: Architecture) -> Membership:
        """Whether ``arch`` is a member; when not, :attr:`Membership.reason` says why."""
        try:
            self.encode(arch)
        except NotInSpaceError as e:
            return Membership(False, str(e))
        return Membership(True)

    # -- sampling and variation ----------------------------------------------------------

    def _lazy(self, a: Mapping[str, Any], rng: random.Random) -> Assignment:
        """``a`` completed on demand: a label it lacks takes a random value when first read.

        Only the labels a decode reads (the active ones) consume random draws.
        """
        return _Lazy(a, self._labels, rng)

    def sample(
        self, rng: random.Random | int | None = None, *, seed: int | None = None
    ) -> Architecture:
        """A random member: each label uniformly, resampled until the candidate is valid.

        Args:
            rng: A ``random.Random`` (advanced in place) or an integer seed.
            seed: An integer seed (alternative to ``rng``).

        Raises:
            SpaceError: no valid member found in :attr:`max_tries` draws.
        """
        r = _rng(rng, seed)
        last = ""
        ordered = any(c.name == "non_decreasing_width" for c in self.constraints)
        for i in range(self.max_tries):
            start: Assignment = {}
            if ordered and i >= 100:
                # Many stages with long width ranges are rarely drawn in order (5 stages: 1 in
                # 120); after 100 misses, draw each stage's width from those >= the last one.
                prev = 0
                for so in self.stages:
                    wider = [w for w in so.widths if w >= prev] or list(so.widths)
                    prev = start[f"{so.name}.width"] = r.choice(wider)
            try:
                return self.decode(self._lazy(start, r))
            except NotInSpaceError as e:
                last = str(e)
        raise SpaceError(
            f"space {self.name!r}: no valid member in {self.max_tries} samples (last reason: "
            f"{last}); check its constraints and choices"
        )

    def _active(self, a: Assignment) -> list[str]:
        return [k for k in a if len(self._labels[k]) > 1]

    def neighbours(
        self, arch: Architecture, rng: random.Random | int | None = None, *, limit: int = 10_000
    ) -> list[Architecture]:
        """The members that differ from ``arch`` in one active choice (each other value of
        each active label; labels a change makes active take random values), at most
        ``limit`` of them, in label order."""
        r = _rng(rng, None)
        base = self.encode(arch)
        out: dict[str, Architecture] = {}
        for label in self._active(base):
            for value in self._labels[label]:
                if value == base[label]:
                    continue
                try:
                    member = self.decode(self._lazy({**base, label: value}, r))
                except NotInSpaceError:
                    continue
                if member != arch:
                    out.setdefault(member.digest, member)
                if len(out) >= limit:
                    return list(out.values())
        return list(out.values())

    def mutate(
        self,
        arch: Architecture,
        rng: random.Random | int | None = None,
        *,
        prob: float | None = None,
    ) -> Architecture:
        """A member that differs from ``arch`` in one active choice or, with ``prob``, in each
        active choice with probability ``prob`` (per-gene mutation, at least one change).

        A depth increase or a type change takes random values for the newly active labels.
        Returns ``arch`` itself when no valid change is found in :attr:`max_tries`.
        """
        r = _rng(rng, None)
        base = self.encode(arch)
        mutable = self._active(base)
        if not mutable:
            return arch
        for _ in range(self.max_tries):
            if prob is None:
                labels = [r.choice(mutable)]
            else:
                labels = [k for k in mutable if r.random() < prob] or [r.choice(mutable)]
            child = self._lazy(base, r)
            for label in labels:
                child[label] = r.choice([v for v in self._labels[label] if v != base[label]])
            try:
                out = self.decode(child)
            except NotInSpaceError:
                continue
            if out != arch:
                return out
        return arch

    def crossover(
        self,
        a: Architecture,
        b: Architecture,
        rng: random.Random | int | None = None,
        *,
        uniform: bool = False,
    ) -> Architecture:
        """A member taking the stem, each stage and the head from ``a`` or ``b`` at random;
        with ``uniform``, each choice (gene) from either parent (uniform crossover).

        Returns a copy of a parent when no valid mix is found in :attr:`max_tries`.
        """
        r = _rng(rng, None)
        ea, eb = self.encode(a), self.encode(b)
        for _ in range(self.max_tries):
            child: Assignment = {}
            if uniform:
                for k in sorted(ea.keys() | eb.keys()):
                    pick = ea if r.random() < 0.5 else eb
                    if k in pick:
                        child[k] = pick[k]
            else:
                for labels in self._units.values():
                    src = ea if r.random() < 0.5 else eb
                    child.update({k: src[k] for k in labels if k in src})
            try:
                return self.decode(self._lazy(child, r))
            except NotInSpaceError:
                continue
        return a

    # -- enumeration -------------------------------------------------------------------

    def _layer_blocks(
        self, opts: LayerOptions, c_in: int, out: int, fixed: tuple[tuple[str, Any], ...] = ()
    ) -> Iterator[Block]:
        """Every block one slot can hold, for a given input and output width."""
        for t, params in opts.types.items():
            names = list(params)
            for values in itertools.product(*(params[n] for n in names)):
                chosen = dict(zip(names, values, strict=True))
                try:
                    yield make_block(
                        t, out, with_fixed(resolve_choices(t, chosen, c_in, out), fixed)
                    )
                except SpecError:
                    continue

    def block_options(self) -> list[tuple[Block, Shape]]:
        """Every ``(block, input shape)`` a member of the space can contain.

        A superset (constraints across choices, such as non-decreasing widths, are not
        applied), ordered stem first; used to profile a latency table for the whole space.
        """
        found: dict[tuple[Block, Shape], None] = {}

        def place(block: Block, shape: Shape) -> Shape | None:
            family = block.family
            if family.check(shape, block.out_channels, block.params):
                return None
            found[(block, shape)] = None
            return family.out_shape(shape, block.out_channels, block.params)

        first = self.stages[0]
        shapes: set[Shape] = set()
        for w in self.stem.widths or first.widths:
            for b in self._layer_blocks(self.stem, self.input_shape[0], w):
                out = place(b, self.input_shape)
                if out is not None:
                    shapes.add(out)
        for so in self.stages:
            current: set[tuple[Shape, int]] = set()
            for shape in sorted(shapes):
                for w in so.widths:
                    if so.downsample is None:
                        current.add((shape, w))
                        continue
                    for b in self._layer_blocks(so.downsample, shape[0], w):
                        out = place(b, shape)
                        if out is not None:
                            current.add((out, w))
            outs: set[Shape] = set()
            for depth in range(1, max(so.depths) + 1):
                following: set[tuple[Shape, int]] = set()
                fixed = so.first if depth == 1 else ()
                for shape, w in sorted(current):
                    for b in self._layer_blocks(so.blocks, shape[0], w, fixed):
                        out = place(b, shape)
                        if out is not None:
                            following.add((out, w))
                if depth in so.depths or following == current:
                    outs |= {s for s, _ in following}
                if following == current and (depth > 1 or not so.first):
                    break  # a fixed point: deeper slots add no new block or shape
                current = following
            shapes = outs
        for shape in sorted(shapes):
            for b in self._layer_blocks(self.head, shape[0], self.num_classes):
                place(b, shape)
        return list(found)

    # -- size --------------------------------------------------------------------------

    def size(self, *, samples: int = 2000, seed: int = 0) -> SpaceSize:
        """The exact unconstrained count and a sampled estimate of the feasible share."""
        total = self.stem.count() * (len(self.stem.widths) if self.stem.widths else 1)
        per_stage: list[list[int]] = []
        groups: set[str] = set()
        for so in self.stages:
            unit = so.blocks.count()
            if so.group is not None:
                total *= 1 if so.group in groups else unit  # one set of choices per group
                groups.add(so.group)
                unit = 1
            by_depth = [unit if so.shared else unit**d for d in so.depths]
            per_stage.append(by_depth)
            ds = so.downsample.count() if so.downsample else 1
            total *= len(so.widths) * ds * sum(by_depth)
        total *= self.head.count()
        r = random.Random(seed)
        ok = 0
        for _ in range(samples):
            a = self._lazy({}, r)
            # Depth drawn in proportion to the members it holds, so the draw is uniform.
            for so, by_depth in zip(self.stages, per_stage, strict=True):
                a[f"{so.name}.depth"] = r.choices(so.depths, weights=by_depth)[0]
            try:
                self.decode(a)
                ok += 1
            except NotInSpaceError:
                pass
        return SpaceSize(total, ok / samples, samples)

    def describe(self) -> dict[str, Any]:
        """A summary for ``archsearch spaces show``."""

        def layer(opts: LayerOptions) -> dict[str, Any]:
            return {t: {n: _compact(v) for n, v in p.items()} for t, p in opts.types.items()}

        return {
            "name": self.name,
            "description": self.description,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "stem": layer(self.stem),
            "stages": [
                {
                    "name": so.name,
                    "depth": _compact(so.depths),
                    "width": _compact(so.widths),
                    "downsample": layer(so.downsample) if so.downsample else None,
                    "shared": so.group or so.shared,
                    **({"first": dict(so.first)} if so.first else {}),
                    "types": layer(so.blocks),
                }
                for so in self.stages
            ],
            "head": layer(self.head),
            "constraints": [c.describe() for c in self.constraints],
            "choices": len(self.choices()),
        }


def with_fixed(
    params: tuple[tuple[str, Any], ...], fixed: tuple[tuple[str, Any], ...]
) -> tuple[tuple[str, Any], ...]:
    """``params`` (sorted name-value pairs) with the stage's ``fixed`` ones (a first block's
    stride) set over them."""
    return tuple(sorted({**dict(params), **dict(fixed)}.items())) if fixed else params


def _size_key(value: Any) -> tuple[int, float, str]:
    """Orders a label's values: numbers by size (booleans and strings after, as written)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, float(value), "")
    return (0, 0.0, str(value))


def _compact(values: tuple[Any, ...]) -> Any:
    """A long arithmetic progression of integers as ``{min, max, step}``, else a list."""
    v = list(values)
    if len(v) > 8 and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        step = v[1] - v[0]
        if step > 0 and all(b - a == step for a, b in itertools.pairwise(v)):
            return {"min": v[0], "max": v[-1], "step": step}
    return v


def _first(
    raw: Mapping[str, Any],
    types: Mapping[str, Mapping[str, Any]],
    smap: SourceMap,
    path: tuple[Any, ...],
) -> tuple[tuple[str, Any], ...]:
    """Validates a stage's ``first`` overrides: a parameter of every type, not a choice."""
    out: dict[str, Any] = {}
    for n, v in raw.items():
        where = smap.where((*path, "first", n))
        for t, listed in types.items():
            try:
                family = get_block(t)
            except UnknownNameError:
                continue  # reported with its line where the stage's types are read
            try:
                param = family.param(n)
            except KeyError:
                raise SpaceError(
                    f"{where}: first.{n}: block type {t!r} of this stage has no parameter {n!r}"
                ) from None
            if n in listed or any(getattr(family.alias(m), "target", None) == n for m in listed):
                raise SpaceError(
                    f"{where}: first.{n} fixes a parameter that {t!r} also lists as a choice; "
                    "remove one of them"
                )
            try:
                out[n] = param.coerce(v, t)
            except ValueError as e:
                raise SpaceError(f"{where}: first: {e}") from None
    return tuple(sorted(out.items()))


class _Lazy(dict[str, Any]):
    def __init__(
        self, base: Mapping[str, Any], labels: Mapping[str, tuple[Any, ...]], rng: random.Random
    ) -> None:
        super().__init__(base)
        self._labels = labels
        self._rng = rng

    def __missing__(self, label: str) -> Any:
        value = self[label] = self._rng.choice(self._labels[label])
        return value


def _rng(rng: random.Random | int | None, seed: int | None) -> random.Random:
    if isinstance(rng, random.Random):
        return rng
    return random.Random(seed if rng is None else rng)


def _first_difference(got: Architecture, want: Architecture) -> str:
    for lg, lw in zip(got.layers, want.layers, strict=False):
        if lg.block != lw.block:
            for k, v in lw.block.params.items():
                if lg.block.params.get(k) != v:
                    return (
                        f"{lw.path} ({lw.block.type}): {k}={v!r} differs from the space's value "
                        f"{lg.block.params.get(k)!r}"
                    )
            return f"{lw.path}: {lw.block.type} differs from the space's {lg.block.type}"
    return "the architecture differs from every member the space can build"


def _from_model(model: SpaceModel, smap: SourceMap, text: str) -> Space:
    def layer(opts: LayerOptionsModel, role: Role, path: tuple[Any, ...]) -> LayerOptions:
        types: dict[str, dict[str, tuple[Any, ...]]] = {}
        for t, params in opts.types.items():
            where = smap.where((*path, "types", t))
            try:
                family = get_block(t)
            except UnknownNameError as e:
                raise SpaceError(f"{where}: {e}") from None
            if role not in family.roles:
                raise SpaceError(
                    f"{where}: block type {t!r} cannot be a {role}; {role} types: "
                    f"{', '.join(n for n in _role_names(role))}"
                )
            resolved: dict[str, tuple[Any, ...]] = {}
            for n, raw in params.items():
                pwhere = smap.where((*path, "types", t, n))
                if isinstance(raw, IntRange):
                    values: tuple[Any, ...] = tuple(raw.values())
                else:
                    values = tuple(raw) if isinstance(raw, list) else (raw,)
                if not values:
                    raise SpaceError(f"{pwhere}: {t}.{n}: give at least one value")
                alias = family.alias(n)
                if alias is not None:
                    if alias.target in params:
                        raise SpaceError(
                            f"{pwhere}: {t}: give {n!r} or {alias.target!r}, not both"
                        )
                    if alias.of is not None and not any(
                        m == alias.of or getattr(family.alias(m), "target", None) == alias.of
                        for m in params
                    ):
                        raise SpaceError(
                            f"{pwhere}: {t}.{n} is a ratio of {alias.of!r}; give {alias.of!r} "
                            "choices too"
                        )
                    for v in values:
                        if (
                            isinstance(v, bool)
                            or not isinstance(v, int | float)
                            or not 0 <= v <= MAX_INT_PARAM  # NaN fails too
                        ):
                            raise SpaceError(
                                f"{pwhere}: {t}.{n} must be non-negative numbers up to "
                                f"{MAX_INT_PARAM:,}, got {v!r}"
                            )
                else:
                    try:
                        param = family.param(n)
                    except KeyError:
                        names = [p.name for p in family.params] + [a.name for a in family.aliases]
                        raise SpaceError(
                            f"{pwhere}: block type {t!r} has no parameter {n!r}; its parameters: "
                            f"{', '.join(names)}"
                        ) from None
                    try:
                        values = tuple(param.coerce(v, f"{t}") for v in values)
                    except ValueError as e:
                        raise SpaceError(f"{pwhere}: {e}") from None
                if len(set(values)) != len(values):
                    raise SpaceError(f"{pwhere}: {t}.{n} lists a value twice: {list(values)}")
                resolved[n] = values
            options = math.prod(len(v) for v in resolved.values())
            if options > MAX_BLOCK_OPTIONS:
                raise SpaceError(
                    f"{where}: {t} offers {options:,} parameter combinations (the product of its "
                    f"choices); at most {MAX_BLOCK_OPTIONS:,}: give fewer choices"
                )
            types[t] = resolved
        widths = tuple(widths_of(opts.width)) if opts.width is not None else None
        return LayerOptions(role, types, widths)

    stages = []
    names: set[str] = set()
    for i, sm in enumerate(model.stages):
        name = sm.name or f"s{i + 1}"
        if name in names or name in ("stem", "head") or "." in name:
            raise SpaceError(
                f"{smap.where(('stages', i, 'name'))}: stage name {name!r} must be unique, "
                "without dots, and not 'stem' or 'head'"
            )
        names.add(name)
        if sm.downsample is not None and sm.downsample.width is not None:
            raise SpaceError(
                f"{smap.where(('stages', i, 'downsample', 'width'))}: a downsample takes the "
                "stage's width; remove 'width'"
            )
        stages.append(
            StageOptions(
                name=name,
                depths=tuple(sm.depth_choices()),
                widths=tuple(widths_of(sm.width)),
                first=_first(sm.first, sm.types, smap, ("stages", i)),
                downsample=layer(sm.downsample, "downsample", ("stages", i, "downsample"))
                if sm.downsample
                else None,
                blocks=layer(LayerOptionsModel(types=sm.types), "block", ("stages", i)),
                shared=bool(sm.shared),
                group=sm.shared if isinstance(sm.shared, str) else None,
            )
        )
    _check_groups(stages, smap)
    if model.head.width is not None:
        raise SpaceError(
            f"{smap.where(('head', 'width'))}: the head's width is num_classes; remove 'width'"
        )
    constraints = []
    for i, raw in enumerate(model.constraints):
        where = smap.where(("constraints", i))
        kwargs: dict[str, Any]
        if isinstance(raw, str):
            cname, kwargs = raw, {}
        elif len(raw) == 1:
            ((cname, kwargs),) = raw.items()
            kwargs = kwargs or {}
            if not isinstance(kwargs, dict):
                raise SpaceError(f"{where}: options of constraint {cname!r} must be a mapping")
        else:
            raise SpaceError(f"{where}: write a constraint as a name or {{name: {{options}}}}")
        try:
            cls = CONSTRAINTS.get(cname)
            check_kwargs(f"constraint {cname!r}", cls, kwargs)
            constraints.append(cls(**kwargs))
        except UserError as e:
            raise SpaceError(f"{where}: {e}") from None
    return Space(
        name=model.name,
        description=model.description.strip(),
        input_shape=(model.input_shape[0], model.input_shape[1], model.input_shape[2]),
        num_classes=model.num_classes,
        stem=layer(model.stem, "stem", ("stem",)),
        stages=tuple(stages),
        head=layer(model.head, "head", ("head",)),
        constraints=tuple(constraints),
        source=text,
    )


def _check_groups(stages: list[StageOptions], smap: SourceMap) -> None:
    """Stages sharing a named group must offer the same block choices; the name is a label."""
    first: dict[str, tuple[int, StageOptions]] = {}
    names = {so.name for so in stages}
    for i, so in enumerate(stages):
        if so.group is None:
            continue
        where = smap.where(("stages", i, "shared"))
        if not so.group or "." in so.group or so.group in names | {"stem", "head"}:
            raise SpaceError(
                f"{where}: shared: {so.group!r} names the choices several stages share; use "
                "a name without dots that is not a stage name, 'stem' or 'head' (or true/false)"
            )
        if so.group not in first:
            first[so.group] = (i, so)
            continue
        _, other = first[so.group]
        if other.blocks.types != so.blocks.types:
            raise SpaceError(
                f"{where}: stage {so.name} shares {so.group!r} with stage {other.name} but "
                f"lists other types or choices; give both the same 'types' (a YAML anchor "
                "helps)"
            )


def _role_names(role: Role) -> list[str]:
    from archsearch.blocks import list_blocks

    return list_blocks(role)
