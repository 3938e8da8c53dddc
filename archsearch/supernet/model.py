"""The weight-sharing supernet: one bank of the largest weights, any member run by slicing.

ViT-ResNAS (Liao et al., 2021) trains one super-network whose sub-networks share weights.
archsearch derives the supernet of any space from its block families instead of a second,
hand-written model: for every *slot* of the space (the stem, each stage's downsample and block
positions, the head) and every block type the slot allows, the bank holds each tensor of the
type's torch module at the largest shape any member needs there. A member runs by building its
module on the ``meta`` device (no memory, no initialisation) and calling it with
:func:`torch.func.functional_call` on *slices* of the bank, so gradients flow into the shared
weights:

* widths, heads and MLP hidden sizes take the leading channels of each dimension (a block with
  fewer heads keeps the first heads: ``vit_block`` has separate q, k and v projections; the
  fused ``qkv``/``kv`` projections of other families are sliced per q/k/v chunk);
* kernel sizes take the centre of a larger kernel (as Once-for-All's elastic kernels);
* depth skips the blocks past a stage's depth: block ``j`` of a stage always uses the weights
  of slot ``j``.

Tensors that two block types, or two structures of one type (a squeeze-excite present or
not), name alike are shared within a slot and type; BatchNorm running statistics are part of
the bank (the evaluator re-estimates them per member). :meth:`Supernet.extract` returns
``archsearch.build(arch)`` with the slices copied in, so it computes exactly what the supernet
computes for that member.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor, nn

from archsearch.blocks import Shape, get_block
from archsearch.errors import NotInSpaceError, UserError
from archsearch.limits import MAX_BUILD_PARAMS
from archsearch.spaces import LayerOptions, Space, resolve_choices
from archsearch.spec import Architecture, Block, Params

if TYPE_CHECKING:
    from archsearch.blocks.layers import Network

FORMAT = 2
"""Version of the supernet's bank layout and checkpoint format; a checkpoint of another
version is refused. 1: a ``torch.save`` pickle (archsearch 0.1; converted by ``archsearch
supernet migrate``, never loaded); 2: safetensors with JSON metadata."""


class SupernetError(UserError):
    """A supernet or checkpoint cannot serve the request (another space, version, member)."""


def space_fingerprint(space: Space) -> str:
    """A digest of the space's YAML: a checkpoint serves only the space it was trained for."""
    return hashlib.sha256((space.source or space.name).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Entry:
    name: str  # the member module's state name
    index: int  # position in the bank
    shape: tuple[int, ...]


@dataclass
class _Member:
    module: nn.Module  # built on the meta device
    entries: list[_Entry]
    fixed: dict[str, Tensor]  # non-persistent buffers (index tables), real
    has_bn: bool


def _slot_names(arch: Architecture) -> list[str]:
    """The bank slot of every layer of ``arch``, in :attr:`Architecture.layers` order."""
    out = ["stem"]
    for i, stage in enumerate(arch.stages):
        if stage.downsample is not None:
            out.append(f"s{i}.down")
        out.extend(f"s{i}.b{j}" for j in range(stage.depth))
    return [*out, "head"]


def _module_prefixes(arch: Architecture) -> list[str]:
    """The module path of every layer in ``build(arch)``, in the same order."""
    out = ["stem"]
    for i, stage in enumerate(arch.stages):
        n = stage.depth + (stage.downsample is not None)
        out.extend(f"stages.{i}.{k}" for k in range(n))
    return [*out, "head"]


def _chunks(name: str) -> int:
    """Fused projections are sliced per chunk: q/k/v of ``qkv``, k/v of ``kv``."""
    leaf = name.rsplit(".", 2)
    owner = leaf[-2] if len(leaf) >= 2 else ""
    return {"qkv": 3, "kv": 2}.get(owner, 1)


def _region(t: Tensor, shape: tuple[int, ...], name: str) -> Tensor:
    """The view of bank tensor ``t`` that a member's ``shape`` uses (see the module)."""
    if tuple(t.shape) == shape:
        return t
    if len(shape) != t.dim() or any(s > b for s, b in zip(shape, t.shape, strict=True)):
        raise SupernetError(
            f"member tensor {name} of shape {list(shape)} does not fit the supernet's "
            f"{list(t.shape)}; the checkpoint was trained for another space"
        )
    c = _chunks(name)
    if c > 1 and t.shape[0] % c == 0 and shape[0] % c == 0:
        v = t.view(c, t.shape[0] // c, *t.shape[1:])
        index: list[slice] = [slice(None), slice(0, shape[0] // c)]
        index += [slice(0, s) for s in shape[1:]]
        return v[tuple(index)]
    kernel = t.dim() == 4 and name.endswith("weight")
    index = []
    for d, (b, s) in enumerate(zip(t.shape, shape, strict=True)):
        off = (b - s) // 2 if kernel and d >= 2 else 0
        index.append(slice(off, off + s))
    return t[tuple(index)]


def _take(t: Tensor, shape: tuple[int, ...], name: str) -> Tensor:
    r = _region(t, shape, name)
    return r if tuple(r.shape) == shape else r.reshape(shape)


def _layer_options(space: Space) -> list[tuple[str, LayerOptions, list[int], int]]:
    """``(slot, options, widths, stage)`` of every slot, stage -1 for stem and head."""
    first = space.stages[0]
    stem_widths = list(space.stem.widths or first.widths)
    out: list[tuple[str, LayerOptions, list[int], int]] = [("stem", space.stem, stem_widths, -1)]
    for i, so in enumerate(space.stages):
        if so.downsample is not None:
            out.append((f"s{i}.down", so.downsample, list(so.widths), i))
        out.extend((f"s{i}.b{j}", so.blocks, list(so.widths), i) for j in range(max(so.depths)))
    out.append(("head", space.head, [space.num_classes], -1))
    return out


def _variants(opts: LayerOptions) -> Iterator[tuple[str, dict[str, Any]]]:
    for t, params in opts.types.items():
        names = list(params)
        for values in itertools.product(*(params[n] for n in names)):
            yield t, dict(zip(names, values, strict=True))


def _enumerate(
    space: Space, input_shape: Shape, num_classes: int
) -> list[tuple[str, Block, Shape]]:
    """Every slot's block variants at their largest input and output widths, per input map
    size: what the bank must hold (``(slot, block, input shape)``).

    Input shapes propagate slot by slot: a stage's first layer takes what the previous stage's
    blocks (any of them: the depth varies) can output, each later block what the block before
    it can output."""
    out: list[tuple[str, Block, Shape]] = []
    shapes: set[Shape] = {input_shape}
    stage_out: set[Shape] = set()
    current_stage = -1
    for slot, opts, widths, stage in _layer_options(space):
        if slot == "head":
            widths = [num_classes]
        if stage != current_stage and stage_out:
            shapes, stage_out = stage_out, set()
        current_stage = stage
        first = stage >= 0 and slot.endswith(".b0")
        fixed = dict(space.stages[stage].first) if first else {}
        produced: set[Shape] = set()
        for t, chosen in _variants(opts):
            family = get_block(t)
            best: dict[tuple[int, int], tuple[int, Block, Shape]] = {}
            for shape in shapes:
                for w in widths:
                    try:
                        items = dict(resolve_choices(t, chosen, shape[0], w))
                        items.update(fixed)
                        block = Block(t, w, Params(items))
                    except (UserError, ValueError):  # a variant that cannot exist here
                        continue
                    if family.check(shape, w, block.params) is not None:
                        continue
                    produced.add(family.out_shape(shape, w, block.params))
                    size = w + shape[0]
                    key = (shape[1], shape[2])
                    if key not in best or size > best[key][0]:
                        best[key] = (size, block, shape)
            out.extend((slot, block, shape) for _, block, shape in best.values())
        if ".b" in slot:
            stage_out |= produced
        if slot != "head":
            shapes = produced or shapes
    return out


class Supernet(nn.Module):
    """The supernet of a space at an input shape; see the module docstring.

    Args:
        space: The space whose members it runs.
        input_shape: The images it is trained on (members are rebuilt at this shape, as the
            ``train`` evaluator does). Default: the space's.
        num_classes: Classes of the data. Default: the space's.
        seed: Seed of the initial weights.
    """

    def __init__(
        self,
        space: Space,
        *,
        input_shape: Shape | None = None,
        num_classes: int | None = None,
        seed: int = 0,
        init: bool = True,
    ) -> None:
        super().__init__()
        self.space = space
        self.input_shape: Shape = tuple(input_shape or space.input_shape)  # type: ignore[assignment]
        self.num_classes = int(num_classes or space.num_classes)
        shapes: dict[str, tuple[int, ...]] = {}
        is_buffer: dict[str, bool] = {}
        source: dict[str, tuple[int, str, Block, Shape, str]] = {}
        for slot, block, shape in _enumerate(space, self.input_shape, self.num_classes):
            with torch.device("meta"):
                module = block.family.build(shape, block.out_channels, block.params)
            buffers = {n for n, _ in module.named_buffers()}
            for name, t in module.state_dict().items():
                key = f"{slot}:{block.type}:{name}:{t.dim()}"
                old = shapes.get(key)
                shapes[key] = tuple(t.shape) if old is None else tuple(map(max, old, t.shape))
                is_buffer[key] = name in buffers
                if key not in source or t.numel() > source[key][0]:
                    source[key] = (t.numel(), slot, block, shape, name)
        total = sum(math.prod(v) for v in shapes.values())
        if total > MAX_BUILD_PARAMS:
            raise SupernetError(
                f"the supernet of space {space.name!r} would hold {total:,} values; at most "
                f"{MAX_BUILD_PARAMS:,} (8 GB in float32): narrow the space's widths or depths"
            )
        self.keys: list[str] = sorted(shapes)
        self._index = {k: i for i, k in enumerate(self.keys)}
        self.weights = nn.ParameterList()
        self._buffer_of: dict[int, str] = {}
        for i, key in enumerate(self.keys):
            dtype = torch.long if key.endswith("num_batches_tracked:0") else torch.float32
            t = torch.zeros(shapes[key], dtype=dtype)
            if is_buffer[key]:
                self.register_buffer(f"buffer_{i}", t)
                self._buffer_of[i] = f"buffer_{i}"
            else:
                self.weights.append(nn.Parameter(t))
                self._buffer_of[i] = f"weights.{len(self.weights) - 1}"
        if init:
            self._initialise(source, seed)
        self._members: OrderedDict[str, _Member] = OrderedDict()

    @property
    def device(self) -> torch.device:
        """Where the shared weights are (members run there)."""
        return self._tensor(0).device

    def _tensor(self, i: int) -> Tensor:
        where = self._buffer_of[i]
        if where.startswith("weights."):
            t = self.weights[int(where.split(".")[1])]
        else:
            t = getattr(self, where)
        return cast(Tensor, t)

    @torch.no_grad()
    def _initialise(
        self, source: dict[str, tuple[int, str, Block, Shape, str]], seed: int
    ) -> None:
        """Each tensor from a real build of the variant that uses it most (the families' own
        initialisation); what that variant leaves uncovered keeps a small random init."""
        built: dict[tuple[str, str, Shape], dict[str, Tensor]] = {}
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            for key in self.keys:
                _, slot, block, shape, name = source[key]
                tag = (slot, repr(block), shape)
                if tag not in built:
                    m = block.family.build(shape, block.out_channels, block.params)
                    built[tag] = m.state_dict()
                src = built[tag][name]
                dst = self._tensor(self._index[key])
                if tuple(src.shape) != tuple(dst.shape) and dst.dim() >= 2:
                    nn.init.trunc_normal_(dst, std=0.02)
                region = _region(dst, tuple(src.shape), name)
                region.copy_(src.view(region.shape))

    # -- members ---------------------------------------------------------------------

    def check_member(self, arch: Architecture) -> Architecture:
        """``arch`` at the supernet's input shape, after checking it is a member.

        Raises:
            NotInSpaceError: not a member of the space; the message is ``contains``'s reason.
        """
        membership = self.space.contains(arch)
        if not membership:
            raise NotInSpaceError(
                f"architecture {arch.digest[:12]} is not a member of space "
                f"{self.space.name!r}: {membership.reason}"
            )
        return self._at_input(arch)

    def _at_input(self, arch: Architecture) -> Architecture:
        if tuple(arch.input_shape) == self.input_shape and arch.num_classes == self.num_classes:
            return arch
        return arch.with_input(self.input_shape, self.num_classes)

    def member(self, arch: Architecture) -> _Member:
        """The meta-built module of ``arch`` (at the supernet's input) and its bank entries;
        the last 256 are cached."""
        arch = self._at_input(arch)
        key = arch.digest
        cached = self._members.get(key)
        if cached is not None:
            self._members.move_to_end(key)
            return cached
        from archsearch.build import build

        with torch.device("meta"):
            net = build(arch)
        entries: list[_Entry] = []
        slots = zip(_slot_names(arch), arch.layers, strict=True)
        layer_of = dict(zip(_module_prefixes(arch), slots, strict=True))
        for name, t in net.state_dict().items():
            prefix, slot, layer = self._layer(name, layer_of)
            rest = name[len(prefix) + 1 :]
            bank_key = f"{slot}:{layer.block.type}:{rest}:{t.dim()}"
            index = self._index.get(bank_key)
            if index is None:
                raise SupernetError(
                    f"the supernet holds no weights for {name} ({layer.block.type} at {slot}); "
                    "it was trained for another space"
                )
            entries.append(_Entry(name, index, tuple(t.shape)))
        fixed = self._fixed_buffers(net, arch, layer_of)
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
        m = _Member(net, entries, fixed, has_bn)
        self._members[key] = m
        if len(self._members) > 256:
            self._members.popitem(last=False)
        return m

    @staticmethod
    def _layer(name: str, layer_of: dict[str, Any]) -> tuple[str, str, Any]:
        parts = name.split(".")
        prefix = ".".join(parts[:3]) if parts[0] == "stages" else parts[0]
        slot, layer = layer_of[prefix]
        return prefix, slot, layer

    def _fixed_buffers(
        self, net: nn.Module, arch: Architecture, layer_of: dict[str, Any]
    ) -> dict[str, Tensor]:
        """Non-persistent buffers (index tables computed at build time) from real builds."""
        out: dict[str, Tensor] = {}
        real: dict[str, nn.Module] = {}
        for mod_name, mod in net.named_modules():
            for b in getattr(mod, "_non_persistent_buffers_set", ()):
                full = f"{mod_name}.{b}"
                prefix, _, layer = self._layer(full, layer_of)
                if prefix not in real:
                    real[prefix] = layer.family.build(
                        layer.in_shape, layer.block.out_channels, layer.block.params
                    )
                out[full] = real[prefix].get_buffer(full[len(prefix) + 1 :])
        return out

    def tensors(self, arch: Architecture) -> dict[str, Tensor]:
        """The member's state (parameters and buffers) as slices of the bank."""
        m = self.member(arch)
        out = {e.name: _take(self._tensor(e.index), e.shape, e.name) for e in m.entries}
        dev = self.device
        out.update({k: v.to(dev) for k, v in m.fixed.items()})  # built on the CPU
        return out

    def forward(
        self, x: Tensor, arch: Architecture, gates: dict[str, Tensor] | None = None
    ) -> Tensor:
        """Runs member ``arch`` on ``x`` with the shared weights (gradients reach the bank).

        ``gates`` multiplies the output of the block at each module path
        (``stages.<i>.<k>``) by a scalar: the straight-through Gumbel-softmax gates through
        which architecture parameters learn (:mod:`archsearch.supernet.alphas`)."""
        module = self.member(arch).module.train(self.training)
        handles = [
            module.get_submodule(path).register_forward_hook(lambda _m, _i, out, g=gate: out * g)
            for path, gate in (gates or {}).items()
        ]
        try:
            return torch.func.functional_call(module, self.tensors(arch), (x,), strict=True)  # type: ignore[no-any-return]
        finally:
            for h in handles:
                h.remove()

    def extract(self, arch: Architecture) -> Network:
        """``archsearch.build(arch)`` (at the supernet's input shape) with the shared weights
        copied in: a standalone module that computes what the supernet computes for ``arch``.

        Raises:
            NotInSpaceError: ``arch`` is not a member of the space (``contains``'s reason).
        """
        from archsearch.build import build

        arch = self.check_member(arch)
        net = build(arch)
        state = {k: v.detach().clone() for k, v in self.tensors(arch).items()}
        persistent = net.state_dict().keys()
        net.load_state_dict({k: state[k] for k in persistent}, strict=True)
        return net.train(self.training)

    def member_extremes(self) -> tuple[Architecture, Architecture]:
        """The smallest and the largest member by MACs (for the sandwich rule): every numeric
        choice at its minimum (maximum); if that breaks a constraint, the extremes of 512
        seeded samples."""
        from archsearch.cost import count

        choices = self.space.choices()
        fixed = self.space.fixed()
        out = []
        for pick in (min, max):
            a = dict(fixed)
            for label, c in choices.items():
                numeric = all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in c.values
                )
                a[label] = pick(c.values) if numeric else c.values[0]
            try:
                out.append(self.space.decode(a))
            except (NotInSpaceError, UserError):
                import random

                rng = random.Random(0)
                sample = [self.space.sample(rng) for _ in range(512)]
                out.append(pick(sample, key=lambda s: count(s).macs))
        return out[0], out[1]
