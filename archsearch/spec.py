"""The architecture spec: frozen, typed, validated plain data with a canonical JSON digest.

An :class:`Architecture` is an input shape, a number of classes, a stem, stages (each an
optional downsample and a tuple of blocks) and a head. A :class:`Block` is
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


@dataclass(frozen=True, slots=True)
class Stage:
    """A stage: an optional downsample, then one or more blocks."""

    blocks: tuple[Block, ...]
    downsample: Block | None = None

    @property
    def width(self) -> int:
        return self.blocks[-1].out_channels if self.blocks else 0

    @property
    def depth(self) -> int:
        return len(self.blocks)


class Layer(NamedTuple):
    """One block of an architecture with its place and its input/output shapes."""

    path: str
    role: Role
    block: Block
    family: BlockFamily
    in_shape: Shape
    out_shape: Shape


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
        placed: list[tuple[str, Role, Block]] = [("stem", "stem", self.stem)]
        for i, stage in enumerate(self.stages):
            if not stage.blocks:
                raise SpecError(f"stages[{i}]: a stage needs at least one block")
            if len(stage.blocks) > limits.MAX_DEPTH:
                raise SpecError(
                    f"stages[{i}]: a stage holds at most {limits.MAX_DEPTH:,} blocks, got "
                    f"{len(stage.blocks)}"
                )
            if stage.downsample is not None:
                placed.append((f"stages[{i}].downsample", "downsample", stage.downsample))
            placed.extend(
                (f"stages[{i}].blocks[{j}]", "block", b) for j, b in enumerate(stage.blocks)
            )
        placed.append(("head", "head", self.head))
        layers = []
        for path, role, block in placed:
            family = get_block(block.type)
            if role not in family.roles:
                raise SpecError(
                    f"{path}: block type {block.type!r} cannot be a {role} (it can be: "
                    f"{', '.join(sorted(family.roles))})"
                )
            reason = family.check(shape, block.out_channels, block.params)
            if reason:
                raise SpecError(f"{path} ({block.type}): {reason}")
            out = family.out_shape(shape, block.out_channels, block.params)
            layers.append(Layer(path, role, block, family, shape, out))
            shape = out
        return tuple(layers)

    # -- derived views -------------------------------------------------------------------

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Every block in order (stem, downsamples and blocks, head) with its shapes."""
        return self._layers

    @property
    def depth(self) -> int:
        """Number of blocks in the stages (stem, downsamples and head excluded)."""
        return sum(s.depth for s in self.stages)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(s.width for s in self.stages)

    def summary(self) -> str:
        """A one-line description: stem, then per stage its depth, block types and width."""
        parts = [f"{self.stem.type}:{self.stem.out_channels}"]
        for stage in self.stages:
            types = sorted({b.type for b in stage.blocks})
            parts.append(f"{stage.depth}x{'/'.join(types)}@{stage.width}")
        return " | ".join(parts)

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "stem": self.stem.to_dict(),
            "stages": [
                {
                    "downsample": s.downsample.to_dict() if s.downsample else None,
                    "blocks": [b.to_dict() for b in s.blocks],
                }
                for s in self.stages
            ],
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
        stages = []
        for i, sd in enumerate(stages_data):
            where = f"stages[{i}]"
            if not isinstance(sd, Mapping):
                raise SpecError(
                    f"{where}: expected a mapping with downsample/blocks, got {_shown(sd)}"
                )
            _reject_unknown(sd, {"downsample", "blocks"}, where)
            ds = sd.get("downsample")
            downsample = Block.from_dict(ds, where=f"{where}.downsample") if ds else None
            blocks_data = sd.get("blocks")
            if not isinstance(blocks_data, list):
                raise SpecError(
                    f"{where}.blocks: expected a list of blocks, got {_shown(blocks_data)}"
                )
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
            stages.append(Stage(tuple(blocks), downsample))
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
