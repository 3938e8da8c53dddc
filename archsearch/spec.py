"""The architecture spec: frozen, typed, validated plain data with a canonical JSON digest.

An :class:`Architecture` is an input shape, a number of classes, a stem, stages (each an
optional downsample and a tuple of blocks, or branches run side by side on several streams:
:class:`Stage`) and a head. A :class:`Block` is
``(type, out_channels, params)``; its type names a family in :data:`archsearch.blocks.BLOCKS`,
which resolves every parameter's default when the block is created, so that the canonical
JSON (sorted keys, no defaults left implicit) identifies the network. Its SHA-256 is the
architecture's :attr:`~Architecture.digest`, the key used for de-duplication and storage.

Creating an Architecture validates it: block types and their roles, parameter types, and the
shape-dependent rules of each family (a width-keeping block after a width change, heads that do
not divide the width, ...). Errors are :class:`~archsearch.errors.SpecError` naming the block by
its path (``stages[2].blocks[1]``) and the offending values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from archsearch import limits
from archsearch.blocks import BlockFamily, Role, Scalar, Shape, get_block
from archsearch.errors import SpecError, UnknownNameError

DEFAULT_INPUT: Shape = (3, 224, 224)
DEFAULT_CLASSES = 1000


class Params(dict[str, Scalar]):
    """A block's resolved parameters: a read-only, hashable dict, sorted by name.

    A dict subclass so that lookups in the cost formulas run at C speed.
    """

    __slots__ = ("_hash",)

    def __init__(self, items: Mapping[str, Scalar] | None = None) -> None:
        super().__init__(sorted((items or {}).items()))
        self._hash = hash(tuple(self.items()))

    def __hash__(self) -> int:  # type: ignore[override]
        return self._hash

    def __repr__(self) -> str:
        return f"Params({dict(self)!r})"

    def _read_only(self, *args: object, **kwargs: object) -> None:
        raise TypeError("Params are read-only; build a new Block to change a parameter")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]
    __ior__ = _read_only  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Block:
    """One block: a family name, its output channels and its fully resolved parameters.

    Creating a Block looks its family up and resolves its parameters (defaults filled in,
    types checked, unknown names rejected). Shape-dependent checks happen when the block is
    placed in an :class:`Architecture`.
    """

    type: str
    out_channels: int
    params: Params = field(default_factory=Params)

    def __post_init__(self) -> None:
        try:
            family = get_block(self.type)
        except UnknownNameError as e:
            raise SpecError(str(e)) from None
        if (
            not isinstance(self.out_channels, int)
            or isinstance(self.out_channels, bool)
            or not 1 <= self.out_channels <= limits.MAX_WIDTH
        ):
            raise SpecError(
                f"block {self.type!r}: out_channels must be a positive integer, got "
                f"{_shown(self.out_channels)} (at most {limits.MAX_WIDTH:,})"
            )
        try:
            resolved = family.resolve_params(
                self.params, out_channels=self.out_channels, where=f"block {self.type!r}"
            )
        except ValueError as e:
            raise SpecError(str(e)) from None
        object.__setattr__(self, "params", Params(resolved))

    @property
    def family(self) -> BlockFamily:
        return get_block(self.type)

    def to_dict(self) -> dict[str, Any]:
        """The canonical form: options added later are left out while at their default."""
        params = get_block(self.type).canonical_params(self.params)
        return {"type": self.type, "out_channels": self.out_channels, "params": params}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "block") -> Block:
        """Builds a block from ``{type, out_channels, params}``; errors name ``where``."""
        if not isinstance(data, Mapping):
            raise SpecError(
                f"{where}: expected a mapping with type/out_channels/params, got {_shown(data)}"
            )
        _reject_unknown(data, {"type", "out_channels", "params"}, where)
        if "type" not in data or "out_channels" not in data:
            raise SpecError(f"{where}: needs 'type' and 'out_channels'")
        params = data.get("params") or {}
        if not isinstance(params, Mapping):
            raise SpecError(f"{where}: params must be a mapping, got {_shown(params)}")
        for key, value in params.items():
            if not isinstance(key, str) or not isinstance(value, bool | int | float | str):
                raise SpecError(
                    f"{where}: parameter {_shown(key)} must be a name with a number, true/false "
                    f"or a word as its value, got {_shown(value)}"
                )
        try:
            return cls(str(data["type"]), data["out_channels"], Params(params))
        except SpecError as e:
            raise SpecError(f"{where}: {e}") from None


MERGES = ("mean", "sum", "concat")
"""How a branched stage's ``merge`` joins its streams into one."""


@dataclass(frozen=True, slots=True)
class Stage:
    """A stage: an optional downsample, then one or more blocks; or a *branched* stage.

    A branched stage runs ``branches`` (each a Stage of its own: downsample and blocks) side by
    side, one per stream. The first branched stage opens the streams: every branch starts from
    the stage's input. The streams then persist: a following branched stage with as many
    branches continues them, branch ``b`` on stream ``b``. ``fuse``, if given, holds one block
    per branch, run after all of them: ``fuse[b]`` updates stream ``b`` and reads stream
    ``(b + 1) % n`` as its context (CrossViT's class-token exchange), every one of them reading
    the streams as the branches left them. ``merge`` (mean, sum or concat over channels) joins
    the streams into one at the end of the stage; a network that ends with several streams runs
    its head on each, with its own weights, and averages the logits.
    """

    blocks: tuple[Block, ...] = ()
    downsample: Block | None = None
    branches: tuple[Stage, ...] = ()
    fuse: tuple[Block, ...] = ()
    merge: str | None = None

    @property
    def width(self) -> int:
        """The output width (of stream 0 where the stage leaves several streams)."""
        if not self.branches:
            return self.blocks[-1].out_channels if self.blocks else 0
        if self.merge == "concat":
            return sum(b.width for b in self.branches)
        if self.fuse and not self.merge:
            return self.fuse[0].out_channels
        return self.branches[0].width

    @property
    def depth(self) -> int:
        """Blocks of the stage (downsamples excluded), every branch's and the fuse blocks."""
        return len(self.blocks) + sum(b.depth for b in self.branches) + len(self.fuse)

    def all_blocks(self) -> tuple[Block, ...]:
        """Every block and downsample of the stage, in the order the spec places them."""
        if not self.branches:
            return ((self.downsample,) if self.downsample else ()) + self.blocks
        return tuple(b for br in self.branches for b in br.all_blocks()) + self.fuse

    def to_dict(self) -> dict[str, Any]:
        if not self.branches:
            return {
                "downsample": self.downsample.to_dict() if self.downsample else None,
                "blocks": [b.to_dict() for b in self.blocks],
            }
        return {
            "branches": [b.to_dict() for b in self.branches],
            "fuse": [b.to_dict() for b in self.fuse],
            "merge": self.merge,
        }


class Layer(NamedTuple):
    """One block of an architecture with its place and its input/output shapes.

    ``source`` is the index in :attr:`Architecture.layers` of the layer whose output is this
    one's input (-1: the network's input); the previous layer's, except where a branched stage
    opens or continues several streams (after a merge: the last layer of stream 0).
    """

    path: str
    role: Role
    block: Block
    family: BlockFamily
    in_shape: Shape
    out_shape: Shape
    source: int = -1


_Tip = tuple[Shape, int]


@dataclass(frozen=True)
class Architecture:
    """A network: input shape, number of classes, stem, stages and head. Validated on creation.

    Attributes:
        stem: The stem block (role ``stem``).
        stages: The stages, in order.
        head: The head block (role ``head``); its ``out_channels`` equals ``num_classes``.
        input_shape: ``(channels, height, width)`` of one input image.
        num_classes: Number of classes of the classifier.
    """

    stem: Block
    stages: tuple[Stage, ...]
    head: Block
    input_shape: Shape = DEFAULT_INPUT
    num_classes: int = DEFAULT_CLASSES
    _layers: tuple[Layer, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        object.__setattr__(self, "_layers", self._walk())

    def _walk(self) -> tuple[Layer, ...]:
        shape = self.input_shape
        if len(shape) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape
        ):
            raise SpecError(
                f"input_shape must be three positive integers (C, H, W), got {_shown(shape)}"
            )
        if shape[0] * shape[1] * shape[2] > limits.MAX_INPUT_ELEMENTS:
            raise SpecError(
                f"input_shape {list(shape)} holds {shape[0] * shape[1] * shape[2]:,} values; at "
                f"most {limits.MAX_INPUT_ELEMENTS:,} (C x H x W)"
            )
        if (
            not isinstance(self.num_classes, int)
            or isinstance(self.num_classes, bool)
            or not 1 <= self.num_classes <= limits.MAX_CLASSES
        ):
            raise SpecError(
                f"num_classes must be a positive integer, got {_shown(self.num_classes)} (at "
                f"most {limits.MAX_CLASSES:,})"
            )
        if len(self.stages) > limits.MAX_STAGES:
            raise SpecError(
                f"an architecture has at most {limits.MAX_STAGES} stages, got {len(self.stages)}"
            )
        if self.head.out_channels != self.num_classes:
            raise SpecError(
                f"head: out_channels={self.head.out_channels} must equal "
                f"num_classes={self.num_classes}"
            )
        if not self.stages:
            raise SpecError("an architecture needs at least one stage")
        total = sum(len(stage.all_blocks()) for stage in self.stages)
        if total > limits.MAX_BLOCKS:
            raise SpecError(
                f"an architecture holds at most {limits.MAX_BLOCKS:,} blocks, every branch's "
                f"included; this one has {total:,}"
            )
        layers: list[Layer] = []

        # A stream is (shape, index of the layer that output it; -1: the network's input).
        def place(
            path: str, role: Role, block: Block, stream: _Tip, ctx: Shape | None = None
        ) -> _Tip:
            shape = stream[0]
            family = get_block(block.type)
            if role not in family.roles:
                raise SpecError(
                    f"{path}: block type {block.type!r} cannot be a {role} (it can be: "
                    f"{', '.join(sorted(family.roles))})"
                )
            reason = family.check(shape, block.out_channels, block.params)
            if reason:
                raise SpecError(f"{path} ({block.type}): {reason}")
            want = family.context(shape, block.out_channels, block.params)
            if ctx is None and want is not None:
                raise SpecError(
                    f"{path} ({block.type}): this block reads a second stream; it can only be "
                    "one of a branched stage's fuse blocks"
                )
            if ctx is not None and want is None:
                raise SpecError(
                    f"{path} ({block.type}): a fuse block reads the next stream; this type "
                    "reads only its own: put it at the end of its branch instead"
                )
            if ctx is not None and want is not None and tuple(want) != tuple(ctx):
                raise SpecError(
                    f"{path} ({block.type}): it reads the next stream as a {list(want)} input "
                    f"(its parameters say so), but that stream is {list(ctx)}: set its context "
                    "parameters to match"
                )
            out = family.out_shape(shape, block.out_channels, block.params)
            layers.append(Layer(path, role, block, family, shape, out, stream[1]))
            return out, len(layers) - 1

        def place_chain(where: str, stage: Stage, stream: _Tip) -> _Tip:
            if not stage.blocks:
                raise SpecError(f"{where}: a stage needs at least one block")
            if len(stage.blocks) > limits.MAX_DEPTH:
                raise SpecError(
                    f"{where}: a stage holds at most {limits.MAX_DEPTH:,} blocks, got "
                    f"{len(stage.blocks)}"
                )
            if stage.downsample is not None:
                stream = place(f"{where}.downsample", "downsample", stage.downsample, stream)
            for j, b in enumerate(stage.blocks):
                stream = place(f"{where}.blocks[{j}]", "block", b, stream)
            return stream

        streams = [place("stem", "stem", self.stem, (shape, -1))]
        opened = 0
        for i, stage in enumerate(self.stages):
            where = f"stages[{i}]"
            if stage.branches and (stage.blocks or stage.downsample):
                raise SpecError(f"{where}: a stage has either blocks or branches, not both")
            if not stage.branches and (stage.fuse or stage.merge):
                raise SpecError(f"{where}: fuse and merge belong to a stage with branches")
            if not stage.branches:
                if len(streams) > 1:
                    raise SpecError(
                        f"{where}: the network carries {len(streams)} streams here (opened by "
                        f"stages[{opened}]); a plain stage takes one: give it branches, or "
                        f"merge the streams at the end of stages[{i - 1}]"
                    )
                streams = [place_chain(where, stage, streams[0])]
                continue
            n = len(stage.branches)
            if not 2 <= n <= limits.MAX_BRANCHES:
                raise SpecError(
                    f"{where}.branches: a branched stage has 2 to {limits.MAX_BRANCHES} "
                    f"branches, got {n}"
                )
            if len(streams) == 1:
                streams, opened = streams * n, i
            elif len(streams) != n:
                raise SpecError(
                    f"{where}.branches: the network carries {len(streams)} streams here; give "
                    f"{len(streams)} branches, one per stream, not {n}"
                )
            streams = [
                place_chain(f"{where}.branches[{b}]", br, streams[b])
                for b, br in enumerate(stage.branches)
            ]
            if stage.fuse:
                if len(stage.fuse) != n:
                    raise SpecError(
                        f"{where}.fuse: one fuse block per branch: {n}, got {len(stage.fuse)}"
                    )
                streams = [
                    place(f"{where}.fuse[{b}]", "block", f, streams[b], streams[(b + 1) % n][0])
                    for b, f in enumerate(stage.fuse)
                ]
            if stage.merge is not None:  # the merged map's source: stream 0's last layer
                merged = _merged(where, stage.merge, [shape for shape, _ in streams])
                streams = [(merged, streams[0][1])]
        for b, s in enumerate(streams):
            place("head" if len(streams) == 1 else f"head[{b}]", "head", self.head, s)
        return tuple(layers)

    # -- derived views -------------------------------------------------------------------

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Every block in order (stem, downsamples and blocks, head) with its shapes."""
        return self._layers

    @property
    def branched(self) -> bool:
        """True when a stage has branches: the network carries several streams somewhere."""
        return any(stage.branches for stage in self.stages)

    @property
    def depth(self) -> int:
        """Number of blocks in the stages (stem, downsamples and head excluded)."""
        return sum(s.depth for s in self.stages)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(s.width for s in self.stages)

    def summary(self) -> str:
        """A one-line description: stem, then per stage its depth, block types and width."""

        def part(stage: Stage) -> str:
            if not stage.branches:
                types = sorted({b.type for b in stage.blocks})
                return f"{stage.depth}x{'/'.join(types)}@{stage.width}"
            text = " || ".join(part(b) for b in stage.branches)
            fuse = "/".join(sorted({b.type for b in stage.fuse}))
            return (
                f"[{text}]"
                + (f"+{fuse}" if fuse else "")
                + (f"->{stage.merge}" if stage.merge else "")
            )

        return " | ".join(
            [f"{self.stem.type}:{self.stem.out_channels}"] + [part(s) for s in self.stages]
        )

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "stem": self.stem.to_dict(),
            "stages": [s.to_dict() for s in self.stages],
            "head": self.head.to_dict(),
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The canonical JSON (sorted keys, compact) unless ``indent`` asks for a pretty one."""
        separators = (",", ":") if indent is None else (",", ": ")
        return json.dumps(
            self.to_dict(), sort_keys=True, separators=separators, indent=indent, allow_nan=False
        )

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=99)

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON: the architecture's identity."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: Any) -> Architecture:
        """Builds an architecture from the dict form of :meth:`to_dict`.

        Hand-written specs may omit ``input_shape``/``num_classes`` (defaults 3x224x224 and
        1000), the head's ``out_channels`` (= num_classes), a stage's ``downsample``, any block
        parameter with a default, and may write ``repeat: n`` in a block to repeat it n times.
        """
        if not isinstance(data, Mapping):
            raise SpecError(f"an architecture must be a mapping, got {type(data).__name__}")
        _reject_unknown(data, {"input_shape", "num_classes", "stem", "stages", "head"}, "spec")
        for key in ("stem", "stages", "head"):
            if key not in data:
                raise SpecError(f"spec: missing {key!r}")
        num_classes = data.get("num_classes", DEFAULT_CLASSES)
        shape = data.get("input_shape", list(DEFAULT_INPUT))
        if not isinstance(shape, list | tuple):
            raise SpecError(f"input_shape must be a list [C, H, W], got {_shown(shape)}")
        stages_data = data["stages"]
        if not isinstance(stages_data, list):
            raise SpecError(f"stages must be a list, got {_shown(stages_data)}")
        if len(stages_data) > limits.MAX_STAGES:
            raise SpecError(
                f"an architecture has at most {limits.MAX_STAGES} stages, got {len(stages_data)}"
            )
        stages = [_stage_from_dict(sd, f"stages[{i}]") for i, sd in enumerate(stages_data)]
        head = data["head"]
        if isinstance(head, Mapping) and "out_channels" not in head:
            head = {**head, "out_channels": num_classes}
        return cls(
            stem=Block.from_dict(data["stem"], where="stem"),
            stages=tuple(stages),
            head=Block.from_dict(head, where="head"),
            input_shape=tuple(shape),
            num_classes=num_classes,
        )

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(
                f"architecture JSON is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
            ) from None
        except RecursionError:
            raise SpecError("architecture JSON nests too deeply") from None
        return cls.from_dict(data)

    @classmethod
    def from_yaml(cls, text: str) -> Architecture:
        from archsearch.files import parse_yaml

        data, _ = parse_yaml(text, "architecture YAML", error=SpecError)
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Architecture:
        """Reads a spec from a .json, .yaml or .yml file."""
        from archsearch.files import read_text, short

        p = Path(path)
        text = read_text(p, what="architecture file", error=SpecError)
        try:
            return cls.from_json(text) if p.suffix == ".json" else cls.from_yaml(text)
        except SpecError as e:
            raise SpecError(f"{short(str(p))}: {e}") from None

    def with_input(
        self, input_shape: Shape | None = None, num_classes: int | None = None
    ) -> Architecture:
        """The same blocks for another input shape and/or number of classes.

        Used to train or probe a network at a dataset's resolution: the head's classifier
        follows ``num_classes``; every other block keeps its parameters, and shape rules are
        checked again (a window or reduction too large for the new size raises SpecError).
        The result is a different spec, with its own digest.
        """
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        classes = num_classes if num_classes is not None else self.num_classes
        if shape == self.input_shape and classes == self.num_classes:
            return self
        head = Block(self.head.type, classes, self.head.params)
        return Architecture(self.stem, self.stages, head, shape, classes)  # type: ignore[arg-type]


def _stage_from_dict(sd: Any, where: str, *, branch: bool = False) -> Stage:
    """A stage from ``{downsample, blocks}`` or ``{branches, fuse, merge}``."""
    if not isinstance(sd, Mapping):
        raise SpecError(f"{where}: expected a mapping with downsample/blocks, got {_shown(sd)}")
    if "branches" in sd and not branch:
        _reject_unknown(sd, {"branches", "fuse", "merge"}, where)
        branches, fuse = sd["branches"], sd.get("fuse") or []
        if not isinstance(branches, list) or not 2 <= len(branches) <= limits.MAX_BRANCHES:
            raise SpecError(
                f"{where}.branches: expected a list of 2 to {limits.MAX_BRANCHES} branches, "
                f"got {_shown(branches)}"
            )
        if not isinstance(fuse, list) or len(fuse) > limits.MAX_BRANCHES:
            raise SpecError(f"{where}.fuse: expected a list of blocks, got {_shown(fuse)}")
        merge = sd.get("merge")
        if merge is not None and merge not in MERGES:
            raise SpecError(
                f"{where}.merge: {_shown(merge)} is not a merge; choose one of: "
                f"{', '.join(MERGES)} (or leave it out to keep the streams)"
            )
        return Stage(
            branches=tuple(
                _stage_from_dict(b, f"{where}.branches[{k}]", branch=True)
                for k, b in enumerate(branches)
            ),
            fuse=tuple(Block.from_dict(b, where=f"{where}.fuse[{k}]") for k, b in enumerate(fuse)),
            merge=merge,
        )
    _reject_unknown(sd, {"downsample", "blocks"}, where)
    ds = sd.get("downsample")
    downsample = Block.from_dict(ds, where=f"{where}.downsample") if ds else None
    blocks_data = sd.get("blocks")
    if not isinstance(blocks_data, list):
        raise SpecError(f"{where}.blocks: expected a list of blocks, got {_shown(blocks_data)}")
    blocks: list[Block] = []
    for j, bd in enumerate(blocks_data):
        bwhere = f"{where}.blocks[{j}]"
        repeat = 1
        if isinstance(bd, Mapping) and "repeat" in bd:
            repeat = bd["repeat"]
            if (
                not isinstance(repeat, int)
                or isinstance(repeat, bool)
                or not 1 <= repeat <= limits.MAX_DEPTH
            ):
                raise SpecError(
                    f"{bwhere}: repeat must be a positive integer, got {_shown(repeat)} "
                    f"(at most {limits.MAX_DEPTH:,})"
                )
            bd = {k: v for k, v in bd.items() if k != "repeat"}
        if len(blocks) + repeat > limits.MAX_DEPTH:
            raise SpecError(
                f"{where}: a stage holds at most {limits.MAX_DEPTH:,} blocks; this one "
                "has more (count its blocks and repeats)"
            )
        blocks.extend([Block.from_dict(bd, where=bwhere)] * repeat)
    return Stage(tuple(blocks), downsample)


def _merged(where: str, merge: str, streams: list[Shape]) -> Shape:
    """The shape of ``streams`` joined by ``merge`` (mean, sum or concat over channels)."""
    if merge == "concat":
        if len({s[1:] for s in streams}) > 1:
            raise SpecError(
                f"{where}.merge: concat joins streams of one map size; they are "
                f"{', '.join(f'{s[1]}x{s[2]}' for s in streams)}"
            )
        total = sum(s[0] for s in streams)
        if total > limits.MAX_WIDTH:
            raise SpecError(
                f"{where}.merge: concat makes {total:,} channels; at most {limits.MAX_WIDTH:,}"
            )
        return total, streams[0][1], streams[0][2]
    if len(set(streams)) > 1:
        raise SpecError(
            f"{where}.merge: {merge} joins streams of one shape; they are "
            f"{', '.join(str(list(s)) for s in streams)}: use concat, or match their widths"
        )
    return streams[0]


def _shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut for a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reject_unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise SpecError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
