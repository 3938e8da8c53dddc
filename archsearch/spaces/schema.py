"""The YAML schema of search spaces, validated with pydantic, errors reported as file:line.

A space file looks like this (the built-in ``hybrid.yaml`` is a full example)::

    name: my-space                 # required
    description: one paragraph     # optional
    input_shape: [3, 224, 224]     # optional, default 3x224x224
    num_classes: 1000              # optional, default 1000
    stem:
      width: [32, 48]              # optional; omitted: the first stage's width
      types:                       # allowed block types and their parameter choices
        conv_stem: {act: gelu}     # a value is fixed, a list is a choice
    stages:                        # one entry per stage, in order
      - name: s1                   # optional, default s<i>
        depth: [1, 2, 3]           # choices (a bare 2: that one), or {min: 1, max: 3}
        width: [32, 48, 64]        # output channels of every block in the stage
        downsample:                # optional: a layer before the blocks (to the stage width)
          types: {conv_down: {}}
        shared: false              # true: every block of the stage takes the same choices;
                                   # a name (shared: cell): every block of every stage with
                                   # that name takes the same choices (NAS-Bench-201's cell)
        types:
          convnext: {kernel: [3, 7], mlp_ratio: [2, 4]}
          mhsa: {heads: [2, 4], mlp_ratio: 4}
      - name: s2
        depth: {min: 1, max: 12}
        width: {min: 64, max: 512, step: 8}   # an integer range: 64, 72, ..., 512
        first: {stride: 2}         # fixed parameters of the stage's first block only
        shared: true
        types:
          bottleneck: {kernel: [3, 5], hidden: {min: 16, max: 256, step: 8}}
    head:
      types: {head: {hidden: [0, 1024]}}
    constraints:                   # optional, cross-choice rules
      - non_decreasing_width
      - total_depth: {min: 4, max: 20}

Block parameters may be given by their name or by a family's alias (``mlp_ratio``,
``expand``, ``se_ratio``, ``head_dim``, ``btn_ratio``), which the space turns into exact widths.
Parameters not listed take the family's default.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from archsearch import limits
from archsearch.errors import SpaceError, UserError
from archsearch.files import parse_yaml

Scalar = bool | int | float | str
MAX_RANGE = limits.MAX_CHOICES
"""The most values an integer range ``{min, max, step}`` (or a list of choices) may hold."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class IntRange(_Strict):
    """An integer range ``{min: 8, max: 2048, step: 8}``: every value from min to max by step."""

    min: int = Field(ge=0, le=limits.MAX_INT_PARAM)
    max: int = Field(ge=0, le=limits.MAX_INT_PARAM)
    step: int = Field(default=1, ge=1, le=limits.MAX_INT_PARAM)

    def values(self) -> list[int]:
        return list(range(self.min, self.max + 1, self.step))

    @model_validator(mode="after")
    def _bounds(self) -> IntRange:
        if self.max < self.min:
            raise ValueError(f"range min {self.min} is above max {self.max}")
        if len(range(self.min, self.max + 1, self.step)) > MAX_RANGE:
            raise ValueError(f"a range holds at most {MAX_RANGE} values; raise its step")
        return self


Choices = Annotated[list[Scalar], Field(max_length=MAX_RANGE)]
ParamChoices = dict[str, Scalar | Choices | IntRange]
Widths = Annotated[list[int], Field(max_length=MAX_RANGE)]


def widths_of(v: list[int] | IntRange) -> list[int]:
    return v.values() if isinstance(v, IntRange) else list(v)


def _check_widths(v: list[int] | IntRange) -> None:
    low, high = (
        (v.min, v.max) if isinstance(v, IntRange) else (min(v, default=0), max(v, default=0))
    )
    if (isinstance(v, list) and not v) or low < 1 or (isinstance(v, IntRange) and low > high):
        raise ValueError("width must list positive integers (or give a range of them)")
    if high > limits.MAX_WIDTH:
        raise ValueError(f"widths are at most {limits.MAX_WIDTH:,} channels")


def _one_choice(v: Any) -> Any:
    """A bare integer is the one-choice list ``[v]`` (``depth: 4``, ``width: 64``)."""
    return [v] if isinstance(v, int) and not isinstance(v, bool) else v


class LayerOptionsModel(_Strict):
    types: dict[str, ParamChoices] = Field(min_length=1)
    width: Widths | IntRange | None = None

    _width_one = field_validator("width", mode="before")(_one_choice)

    @field_validator("width")
    @classmethod
    def _positive(cls, v: list[int] | IntRange | None) -> list[int] | IntRange | None:
        if v is not None:
            _check_widths(v)
        return v


class DepthRange(_Strict):
    min: int = Field(ge=1, le=limits.MAX_DEPTH)
    max: int = Field(ge=1, le=limits.MAX_DEPTH)


class StageModel(_Strict):
    name: str | None = Field(default=None, max_length=limits.MAX_NAME)
    depth: Annotated[list[int], Field(max_length=limits.MAX_DEPTH)] | DepthRange
    width: Widths | IntRange
    downsample: LayerOptionsModel | None = None
    shared: bool | str = False
    first: dict[str, Scalar] = {}
    types: dict[str, ParamChoices] = Field(min_length=1)

    _one = field_validator("depth", "width", mode="before")(_one_choice)

    @field_validator("depth")
    @classmethod
    def _depths(cls, v: list[int] | DepthRange) -> list[int] | DepthRange:
        if isinstance(v, DepthRange):
            if v.max < v.min:
                raise ValueError(f"depth min {v.min} is above max {v.max}")
            return v
        if not v or any(d < 1 for d in v):
            raise ValueError("depth must list positive integers (or give min <= max)")
        if max(v) > limits.MAX_DEPTH:
            raise ValueError(f"a stage holds at most {limits.MAX_DEPTH:,} blocks")
        return v

    @field_validator("width")
    @classmethod
    def _widths(cls, v: list[int] | IntRange) -> list[int] | IntRange:
        _check_widths(v)
        return v

    def depth_choices(self) -> list[int]:
        if isinstance(self.depth, DepthRange):
            return list(range(self.depth.min, self.depth.max + 1))
        return list(self.depth)


class SpaceModel(_Strict):
    name: str = Field(min_length=1, max_length=limits.MAX_NAME)
    description: str = ""
    input_shape: list[int] = Field(default=[3, 224, 224], min_length=3, max_length=3)
    num_classes: int = Field(default=1000, ge=1, le=limits.MAX_CLASSES)
    stem: LayerOptionsModel
    stages: list[StageModel] = Field(min_length=1, max_length=limits.MAX_STAGES)
    head: LayerOptionsModel
    constraints: list[str | dict[str, Any]] = Field(default=[], max_length=1000)

    @field_validator("input_shape")
    @classmethod
    def _input(cls, v: list[int]) -> list[int]:
        if any(x < 1 for x in v):
            raise ValueError("input_shape must be three positive integers [C, H, W]")
        if v[0] * v[1] * v[2] > limits.MAX_INPUT_ELEMENTS:
            raise ValueError(
                f"input_shape holds {v[0] * v[1] * v[2]:,} values; at most "
                f"{limits.MAX_INPUT_ELEMENTS:,} (C x H x W)"
            )
        return v


_KEYS = sorted(
    {
        f
        for m in (SpaceModel, StageModel, LayerOptionsModel, DepthRange, IntRange)
        for f in m.model_fields
    }
)


def node_line(root: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at ``path`` (or of its deepest existing ancestor)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for key in path:
        if isinstance(node, yaml.MappingNode):
            found = None
            for k, v in node.value:
                if k.value == str(key):
                    found = v
                    line = k.start_mark.line + 1
                    break
            if found is None:
                return line
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if key >= len(node.value):
                return line
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


class SourceMap:
    """Where each value of a parsed YAML document came from, for ``file:line`` messages."""

    def __init__(self, source: str, root: yaml.Node | None) -> None:
        self.source = source
        self.root = root

    def where(self, path: tuple[Any, ...]) -> str:
        line = node_line(self.root, path)
        return f"{self.source}:{line}" if line else self.source


def format_path(path: tuple[Any, ...]) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or "(top level)"


def data_path(data: Any, loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], bool]:
    """The part of a pydantic error location that exists in ``data``; True if it was cut.

    Pydantic appends the names of union members (``list[int]``, ``DepthRange``) to locations;
    they are not keys of the document.
    """
    path: list[Any] = []
    node = data
    for key in loc:
        in_dict = isinstance(node, dict) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and key < len(node)
        if in_dict or in_list:
            node = node[key]
        elif isinstance(key, str) and ("list[" in key or "Range" in key):
            continue  # the union member the error is about, not a key of the document
        else:
            return tuple(path), True
        path.append(key)
    return tuple(path), False


def _same_form(data: Any, loc: tuple[Any, ...]) -> bool:
    """False for an error about a union member of another form than the value written.

    A width may be a list or a ``{min, max, step}`` range: an error about the list form of a
    value written as a range (or the other way round) is noise.
    """
    node = data
    for key in loc:
        if isinstance(key, str) and (key.startswith("list[") or "Range" in key):
            return isinstance(node, list) == key.startswith("list[")
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return True
    return True


def load_yaml(
    text: str, source: str, *, error: type[UserError] = SpaceError
) -> tuple[Any, SourceMap]:
    """The document in ``text`` and a map of where its values came from
    (:func:`archsearch.files.parse_yaml`: safe, keys unique, size bounded).

    Raises:
        error: a YAML error, as ``source:line: ...``.
    """
    data, root = parse_yaml(text, source, error=error)
    return data, SourceMap(source, root)


def parse_space_yaml(text: str, source: str) -> tuple[SpaceModel, SourceMap]:
    """Parses and schema-validates a space file.

    Raises:
        SpaceError: a YAML syntax error or a schema violation, as ``source:line: message``.
    """
    data, smap = load_yaml(text, source)
    if not isinstance(data, dict):
        raise SpaceError(f"{source}: a space file must be a mapping (name, stem, stages, head)")
    try:
        model = SpaceModel.model_validate(data)
    except ValidationError as e:
        # An unknown key is usually the typo behind the other errors: report it first.
        errors = sorted(
            [x for x in e.errors() if _same_form(data, x["loc"])] or e.errors(),
            key=lambda x: x["type"] != "extra_forbidden",
        )
        err = errors[0]
        loc, cut = data_path(data, err["loc"])
        value = err.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        if err["type"] == "missing":
            msg, shown = f"missing required key {err['loc'][-1]!r}", ""
        elif err["type"] == "extra_forbidden":
            key = str(err["loc"][-1])
            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "see the space schema"
            msg = f"unknown key {key!r}; {hint}"
            shown = ""
        elif cut:
            msg = "expected one of the allowed forms (see the space schema)"
        else:
            msg = err["msg"]
        more = "" if len(errors) == 1 else f" (and {len(errors) - 1} more problem(s))"
        raise SpaceError(f"{smap.where(loc)}: {format_path(loc)}: {msg}{shown}{more}") from None
    return model, smap
