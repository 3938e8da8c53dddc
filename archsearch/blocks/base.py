"""The block-family interface: one definition owns a family's schema, shape, cost and builder.

A *block* in an architecture is ``(type, out_channels, params)``. Its *family* (looked up by
``type`` in :data:`archsearch.blocks.BLOCKS`) knows, side by side so that they cannot drift:

* the parameter schema (:class:`Param`), with defaults resolved at spec construction;
* the output-shape rule (:meth:`BlockFamily.out_shape`) and the shape-dependent checks;
* the analytic cost (:meth:`BlockFamily.cost`): parameters, MACs and activations;
* the main-path layer fan-ins used by DeepMAD's entropy (:meth:`BlockFamily.fan_ins`);
* the torch builder: :meth:`BlockFamily.layer` names a torch-only constructor in
  :mod:`archsearch.blocks.layers` and its plain arguments (what ``archsearch export --format
  py`` writes out); :meth:`BlockFamily.build` calls it, importing torch lazily.

Counting convention (see the README): ``macs`` counts the multiply-accumulates of
convolutions, linear layers and matrix products, attention's QK^T and AV included, exactly what
``torch.utils.flop_counter.FlopCounterMode`` reports divided by two. Normalisation,
activations, pooling, softmax and additions count zero. ``activations`` counts the elements of
every output of those same operations (the RegNet/fvcore convention). One MAC is one FLOP, as
the seed papers report (ConvNeXt-T = 4.5 GFLOPs).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

from archsearch.limits import MAX_INT_PARAM

if TYPE_CHECKING:
    from torch import nn

Scalar = int | float | bool | str
Shape = tuple[int, int, int]
"""A feature map's (channels, height, width), batch excluded."""
Role = Literal["stem", "downsample", "block", "head"]
ROLES: tuple[Role, ...] = ("stem", "downsample", "block", "head")


class Cost(NamedTuple):
    """The exact analytic cost of a block or a network, for one input (batch 1).

    Immutable; ``+`` adds and ``*`` scales elementwise (a NamedTuple for speed: counting
    creates many of them, but tuple concatenation/repetition are replaced).

    Attributes:
        params: Number of trainable parameters (buffers such as BatchNorm statistics excluded).
        macs: Multiply-accumulates; one MAC is reported as one FLOP.
        activations: Elements output by convolutions, linear layers and matrix products.
    """

    params: int = 0
    macs: int = 0
    activations: int = 0

    def __add__(self, other: object) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        # tuple.__new__ skips the generated keyword-handling constructor: counting is hot.
        return tuple.__new__(Cost, (self[0] + other[0], self[1] + other[1], self[2] + other[2]))

    def __mul__(self, k: object) -> Cost:
        if not isinstance(k, int) or isinstance(k, bool):
            return NotImplemented
        return Cost(self[0] * k, self[1] * k, self[2] * k)

    def __rmul__(self, k: object) -> Cost:
        return self.__mul__(k)

    @property
    def activation_bytes(self) -> int:
        """Bytes of :attr:`activations` at float32."""
        return 4 * self.activations

    def as_dict(self) -> dict[str, int]:
        return {"params": self.params, "macs": self.macs, "activations": self.activations}


ZERO = Cost()

ACTIVATIONS = ("relu", "gelu", "silu", "hswish", "quickgelu", "starrelu")
"""The activations a family's ``act`` parameter offers (``make_act``'s names; zero MACs).
StarReLU (``s * relu(x)^2 + b``, MetaFormer baselines, Yu et al., TPAMI 2024) has a learnable
scale and bias per instance: :func:`act_params`."""


def act_params(name: str) -> int:
    """Trainable parameters of one activation module ``name`` (StarReLU: 2, the others: 0)."""
    return 2 if name == "starrelu" else 0


def conv_cost(
    c_in: int, c_out: int, k: int, h_out: int, w_out: int, *, groups: int = 1, bias: bool = False
) -> Cost:
    """Cost of a ``k x k`` convolution producing a ``c_out x h_out x w_out`` map."""
    weights = c_out * (c_in // groups) * k * k
    n = h_out * w_out
    return tuple.__new__(Cost, (weights + (c_out if bias else 0), weights * n, c_out * n))


def linear_cost(c_in: int, c_out: int, tokens: int, *, bias: bool = True) -> Cost:
    """Cost of a linear layer applied to ``tokens`` vectors."""
    weights = c_in * c_out
    return tuple.__new__(
        Cost, (weights + (c_out if bias else 0), weights * tokens, c_out * tokens)
    )


def se_cost(channels: int, squeeze: int) -> Cost:
    """Cost of squeeze-excite on ``channels`` through ``squeeze`` (biased 1x1 convs on the
    pooled 1x1 map; the pooling and the gate count zero)."""
    return conv_cost(channels, squeeze, 1, 1, 1, bias=True) + conv_cost(
        squeeze, channels, 1, 1, 1, bias=True
    )


def class_attention_cost(c: int, tokens: int, heads: int, *, qkv_bias: bool) -> Cost:
    """Cost of class attention at width ``c`` over ``tokens`` tokens: keys and values of every
    token, the class token's query, its scores and weighted values, the output projection."""
    return (
        linear_cost(c, 2 * c, tokens, bias=qkv_bias)
        + linear_cost(c, c, 1, bias=qkv_bias)
        + Cost(0, 2 * tokens * c, heads * tokens + c)
        + linear_cost(c, c, 1)
    )


def norm_params(channels: int, norm: str) -> int:
    """Trainable parameters of a normalisation layer ("bn", "ln", "gn" or "none")."""
    return 0 if norm == "none" else 2 * channels


def conv_out(size: int, k: int, stride: int, padding: int) -> int:
    """Output side of a convolution or pooling window (floor mode)."""
    return (size + 2 * padding - k) // stride + 1


def times(k: float) -> Callable[[int, Mapping[str, Scalar]], Scalar]:
    """A default of ``int(k * out_channels)`` (e.g. an MLP 4x as wide as the block)."""

    def default(out: int, p: Mapping[str, Scalar]) -> Scalar:
        return int(out * k)

    return default


def ratio_of(channels: int, ratio: float) -> int:
    """``round(channels * ratio)``, at least 1: how space files turn ratios into widths."""
    return max(1, round(channels * ratio))


def keeps_width(shape: Shape, out: int, family: str) -> str | None:
    if shape[0] != out:
        return (
            f"{family} keeps its width: in_channels={shape[0]} must equal out_channels={out}; "
            "put a downsample (or a width-changing block) before it"
        )
    return None


def heads_divide(out: int, heads: int) -> str | None:
    """Why ``heads`` attention heads cannot split ``out`` channels, or None if they can."""
    if out % heads:
        divisors = [d for d in range(1, min(out, 64) + 1) if out % d == 0]
        return (
            f"heads={heads} does not divide out_channels={out}; "
            f"choose heads among {', '.join(map(str, divisors))}"
        )
    return None


def group_norm_fits(norm: str, shape: Shape) -> str | None:
    """PyTorch's GroupNorm(1, C) needs more than one value per sample."""
    if norm == "gn" and shape[0] * shape[1] * shape[2] < 2:
        return f"GroupNorm needs more than one value per sample; the input is {shape}"
    return None


def odd_kernel(p: Mapping[str, Any], name: str = "kernel") -> str | None:
    if int(p[name]) % 2 == 0:
        return f"{name}={p[name]} must be odd"
    return None


@dataclass(frozen=True)
class Param:
    """One parameter of a block family.

    Attributes:
        name: The key in a block's ``params``.
        kind: ``int``, ``float``, ``bool`` or ``str``.
        default: A value; or a function ``(out_channels, params) -> value`` of the block's
            width and the parameters declared before this one (e.g. padding from kernel); or
            None when the parameter is required.
        choices: The allowed values, or None for any value of ``kind`` within min/max.
        min: Smallest allowed value (numbers).
        max: Largest allowed value (numbers).
        doc: One line for the user.
        elide_default: An option added after specs were stored: while at its (constant)
            default it is left out of the spec's canonical form, and so of its digest, so that
            every stored architecture keeps its digest.
    """

    name: str
    kind: type
    default: Scalar | Callable[[int, Mapping[str, Scalar]], Scalar] | None = None
    choices: tuple[Scalar, ...] | None = None
    min: float | None = None
    max: float | None = None
    doc: str = ""
    elide_default: bool = False

    def __post_init__(self) -> None:
        if self.elide_default and (self.default is None or callable(self.default)):
            raise TypeError(f"parameter {self.name!r}: elide_default needs a constant default")

    def coerce(self, value: Any, where: str) -> Scalar:
        """Returns ``value`` as this parameter's type, or raises ValueError explaining why not."""
        kind = self.kind
        ok: bool
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if ok:
                value = float(value)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ValueError(
                f"{where}: parameter {self.name!r} must be {kind.__name__}, got {value!r}"
            )
        if kind is float and not math.isfinite(value):
            raise ValueError(f"{where}: parameter {self.name!r} must be finite, got {value!r}")
        if kind is int and self.max is None and abs(value) > MAX_INT_PARAM:
            raise ValueError(
                f"{where}: parameter {self.name!r}={value!r} is out of range; at most "
                f"{MAX_INT_PARAM:,}"
            )
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise ValueError(
                f"{where}: parameter {self.name!r}={value!r} is not allowed; choose one of: "
                f"{allowed}"
            )
        if self.min is not None and value < self.min:
            raise ValueError(f"{where}: parameter {self.name!r}={value!r} must be >= {self.min:g}")
        if self.max is not None and value > self.max:
            raise ValueError(f"{where}: parameter {self.name!r}={value!r} must be <= {self.max:g}")
        return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Alias:
    """A space-level shorthand that sets a parameter from a ratio, e.g. ``mlp_ratio``.

    Search spaces may give choices for an alias instead of its target; the space resolves the
    alias into the target's absolute value, so that specs hold only exact integers.

    Attributes:
        name: The alias as written in a space file.
        target: The parameter it sets.
        resolve: ``(base, out_channels, value) -> target value``, where ``base`` is the
            block's in_channels, or the resolved parameter named by ``of``.
        doc: One line for the user.
        of: The parameter the ratio applies to, if not in_channels (e.g. ``hidden``).
    """

    name: str
    target: str
    resolve: Callable[[int, int, float], int]
    doc: str = ""
    of: str | None = None


@dataclass(frozen=True)
class LayerCall:
    """A block's torch module as a call: a constructor that needs only torch (a class or a
    function of :mod:`archsearch.blocks.layers`, or a ``torch.nn`` class) and plain arguments
    (numbers, strings, booleans and tuples/lists of them).

    ``call()`` builds the module; :mod:`archsearch.export` writes the same call, with the
    constructor's source, into a file that imports only torch.
    """

    fn: Callable[..., nn.Module]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self) -> nn.Module:
        return self.fn(*self.args, **self.kwargs)


class BlockFamily(ABC):
    """A family of blocks: schema, shape rule, analytic cost, entropy layers and torch builder.

    Subclasses are stateless singletons registered in :data:`archsearch.blocks.BLOCKS`. Every
    method receives the block's input shape, its ``out_channels`` and its resolved params.
    """

    name: ClassVar[str]
    roles: ClassVar[frozenset[Role]]
    params: ClassVar[tuple[Param, ...]] = ()
    aliases: ClassVar[tuple[Alias, ...]] = ()
    reference: ClassVar[str] = ""
    """The paper (and official code) the family follows."""
    width_keeping: ClassVar[bool] = False
    """True for blocks whose output has their input's width (a residual block): ``check``
    refuses ``out_channels`` other than the input's (the conformance suite checks both
    ways)."""
    attention: ClassVar[bool] = False
    """True for blocks that mix tokens with attention (EfficientFormer's "3D" blocks, which its
    slimming turns into convolutional "4D" ones); read by the slimming strategies."""

    def __init__(self) -> None:
        self._by_name = {p.name: p for p in self.params}
        self._aliases = {a.name: a for a in self.aliases}
        self._elided = tuple((p.name, p.default) for p in self.params if p.elide_default)

    def param(self, name: str) -> Param:
        return self._by_name[name]

    def canonical_params(self, params: Mapping[str, Scalar]) -> dict[str, Scalar]:
        """Resolved ``params`` without the options that are at an elided default (the form
        that spec files, JSON and digests hold)."""
        if not self._elided:  # the common case, on the hot path of every digest
            return dict(params)
        out = dict(params)
        for name, default in self._elided:
            if name in out and out[name] == default:
                del out[name]
        return out

    def alias(self, name: str) -> Alias | None:
        return self._aliases.get(name)

    def resolve_params(
        self, params: Mapping[str, Any], *, out_channels: int, where: str
    ) -> dict[str, Scalar]:
        """Type-checks ``params`` and fills every default (called when a Block is built).

        Raises:
            ValueError: an unknown or missing parameter, or a value of the wrong type/range.
        """
        unknown = set(params) - set(self._by_name)
        if unknown:
            known = ", ".join(p.name for p in self.params) or "(none)"
            raise ValueError(
                f"{where}: unknown parameter(s) {', '.join(sorted(unknown))} for block type "
                f"{self.name!r}; its parameters are: {known}"
            )
        resolved: dict[str, Scalar] = {}
        for p in self.params:
            if p.name in params:
                value = params[p.name]
            elif p.default is None:
                raise ValueError(
                    f"{where}: block type {self.name!r} needs parameter {p.name!r} ({p.doc})"
                )
            elif callable(p.default):
                value = p.default(out_channels, resolved)
            else:
                value = p.default
            resolved[p.name] = p.coerce(value, where)
        return resolved

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        """Returns why the block cannot take input ``shape``, or None if it can.

        Called by the spec's validation once per block, with the input shape propagated from
        the stem. Subclasses extend it with their own rules (e.g. heads dividing the width).
        """
        if out < 1:
            return f"out_channels={out} must be >= 1"
        return None

    @abstractmethod
    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        """The output shape for input ``shape``."""

    def feature_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        """The last feature map the block computes; differs from :meth:`out_shape` for heads.

        Used by DeepMAD's entropy, which measures the map before global pooling.
        """
        return self.out_shape(shape, out, p)

    @abstractmethod
    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        """The exact cost for input ``shape`` (tested against the built module)."""

    @abstractmethod
    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        """Fan-in ``c_in * k^2 / groups`` of each layer on the block's main path, in order.

        DeepMAD's entropy adds ``0.5 * log(fan_in)`` per layer and its effectiveness ``rho``
        counts these layers; residual links and squeeze-excite are not on the main path.
        """

    def buffers(self, shape: Shape, out: int, p: Mapping[str, Any]) -> int:
        """Elements of the module's buffers that grow with its input or parameters (index
        tables, masks, fixed random features): not parameters, but allocated when built, so
        :func:`archsearch.build.check_memory` bounds them with the parameters. Default 0."""
        return 0

    def context(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape | None:
        """The shape of a second input the block reads from another stream, or None (default:
        the block reads its own input only).

        A block with a context exchanges information between the streams of a branched stage
        (CrossViT's class-token cross-attention): it can only be one of the stage's ``fuse``
        blocks, its module's ``forward`` takes ``(x, context)``, and its parameters fix the
        context's shape, so that its cost depends on ``(shape, out, p)`` alone.
        """
        return None

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        """The block's module as a torch-only constructor and its plain arguments.

        Every built-in family defines it; a plugin family may define :meth:`build` instead, and
        then exports to TorchScript and ONNX but not to PyTorch source.
        """
        raise NotImplementedError(
            f"block type {self.name!r} defines no layer(): it cannot be written as PyTorch "
            "source (its plugin builds its module directly)"
        )

    def build(self, shape: Shape, out: int, p: Mapping[str, Any]) -> nn.Module:
        """A fresh torch module computing the block (imports torch on first use)."""
        return self.layer(shape, out, p)()


class WidthKeepingFamily(BlockFamily):
    """A family of blocks that keep their input's shape (residual blocks): the width check
    and the shape rule once. Subclasses add their checks after ``super().check``."""

    width_keeping: ClassVar[bool] = True

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return keeps_width(shape, out, self.name) or super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape
