"""Layers shared by the families: activations, norms, conv-norm-act, squeeze-excite,
layer scale, attention, MLP and residual wrappers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_RESIDUAL: ContextVar[bool] = ContextVar("archsearch_residual", default=True)


@contextmanager
def no_residual() -> Iterator[None]:
    """Within this context every block computes without its residual links (shortcuts).

    Zen-NAS (Lin et al., ICCV 2021) scores a network with its residual links removed; the
    blocks' ``forward`` methods read this flag through :func:`skip`, so one built module serves
    both. The flag is a context variable: other threads and tasks are not affected.
    """
    token = _RESIDUAL.set(False)
    try:
        yield
    finally:
        _RESIDUAL.reset(token)


def skip(x: Tensor) -> Tensor:
    """A residual link's contribution: ``x``, or zero inside :func:`no_residual`."""
    return x if _RESIDUAL.get() else torch.zeros_like(x)


def make_act(name: str) -> nn.Module:
    """An activation module by name: relu, gelu, silu, hswish, quickgelu, starrelu or none."""
    acts: dict[str, type[nn.Module]] = {
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "hswish": nn.Hardswish,
        "quickgelu": QuickGELU,
        "starrelu": StarReLU,
        "none": nn.Identity,
    }
    return acts[name]()


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (as ConvNeXt's ``channels_first`` norm)."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def make_norm2d(kind: str, channels: int, *, bias: bool = True) -> nn.Module:
    """A normalisation of NCHW maps: bn, ln (over channels; ``bias`` false: scale only), gn
    (one group) or none."""
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "ln":
        return LayerNorm2d(channels, eps=1e-6, bias=bias)
    if kind == "gn":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


class ConvNormAct(nn.Sequential):
    """Convolution, normalisation, activation (padding ``k // 2`` unless given)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        k: int,
        *,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
        norm: str = "bn",
        act: str = "relu",
        padding: int | None = None,
    ) -> None:
        pad = k // 2 if padding is None else padding
        super().__init__(
            nn.Conv2d(c_in, c_out, k, stride, pad, groups=groups, bias=bias),
            make_norm2d(norm, c_out),
            make_act(act),
        )


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018) with biased 1x1 convolutions, as in timm; the
    gate is a sigmoid or MobileNetV3's hard sigmoid (``relu6(x + 3) / 6``)."""

    def __init__(self, channels: int, squeeze: int, act: str, gate: str = "sigmoid") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1, bias=True)
        self.act = make_act(act)
        self.expand = nn.Conv2d(squeeze, channels, 1, bias=True)
        self.gate: nn.Module = nn.Hardsigmoid() if gate == "hsigmoid" else nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.expand(self.act(self.reduce(s)))
        return x * self.gate(s)


class LayerScale(nn.Module):
    """Per-channel learnable scale (CaiT / ConvNeXt), on the last or the channel dimension."""

    def __init__(self, channels: int, *, init: float = 1e-6, channels_last: bool = True) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), init))
        self.channels_last = channels_last

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            return x * self.gamma
        return x * self.gamma.view(1, -1, 1, 1)


class Attention(nn.Module):
    """Multi-head self-attention on tokens, with optional spatial reduction of keys/values.

    ``sr == 0`` is plain MHSA with a fused ``qkv`` projection (ViT); ``sr >= 1`` is PVT's
    spatial-reduction attention with separate ``q`` and ``kv`` projections, keys and values
    computed from the map reduced by a ``sr x sr`` stride-``sr`` convolution and a LayerNorm
    (no reduction when ``sr == 1``); ``linear`` is PVTv2's linear reduction instead: a 7x7
    adaptive average pool, a 1x1 conv, LayerNorm and GELU.
    """

    def __init__(
        self, dim: int, heads: int, *, qkv_bias: bool, sr: int = 0, linear: bool = False
    ) -> None:
        super().__init__()
        self.heads = heads
        self.sr = sr
        self.reduce: nn.Module | None = None
        if sr == 0:
            self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        else:
            self.q = nn.Linear(dim, dim, bias=qkv_bias)
            self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
            if linear:
                self.reduce = nn.Sequential(nn.AdaptiveAvgPool2d(7), nn.Conv2d(dim, dim, 1))
                self.reduce_norm: nn.Module = nn.Sequential(nn.LayerNorm(dim), nn.GELU())
            elif sr > 1:
                self.reduce = nn.Conv2d(dim, dim, sr, sr, bias=True)
                self.reduce_norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        b, n, c = x.shape
        h = self.heads
        if self.sr == 0:
            q, k, v = self.qkv(x).reshape(b, n, 3, h, c // h).permute(2, 0, 3, 1, 4)
        else:
            q = self.q(x).reshape(b, n, h, c // h).transpose(1, 2)
            kv_in = x
            if self.reduce is not None:
                m = x.transpose(1, 2).reshape(b, c, hw[0], hw[1])
                kv_in = self.reduce_norm(self.reduce(m).flatten(2).transpose(1, 2))
            k, v = self.kv(kv_in).reshape(b, -1, 2, h, c // h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """Linear, [ReLU, 3x3 depthwise conv on the token map (PVTv2)], GELU, linear."""

    def __init__(
        self, dim: int, hidden: int, *, dwconv: bool = False, extra_relu: bool = False
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.relu: nn.Module = nn.ReLU() if extra_relu else nn.Identity()
        self.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden) if dwconv else None
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        x = self.relu(self.fc1(x))
        if self.dwconv is not None:
            b, _, c = x.shape
            x = self.dwconv(x.transpose(1, 2).reshape(b, c, hw[0], hw[1]))
            x = x.flatten(2).transpose(1, 2)
        return self.fc2(self.act(x))


class Residual(nn.Module):
    """``act(body(x) + shortcut(x))``."""

    def __init__(
        self, body: nn.Module, shortcut: nn.Module | None = None, act: str = "none"
    ) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.act = make_act(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + skip(self.shortcut(x)))


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``, CvT's (and CLIP's) GELU approximation."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


class StarReLU(nn.Module):
    """``s * relu(x)^2 + b`` with a learnable scalar scale and bias (MetaFormer baselines)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * F.relu(x) ** 2 + self.bias


def class_attention(t: Tensor, q: nn.Module, kv: nn.Module, proj: nn.Module, heads: int) -> Tensor:
    """Class attention (CaiT): the first token of ``t`` (B, N, C) queries every token; keys and
    values from one fused ``kv`` projection. Returns the attended class token (B, 1, C)."""
    b, n, c = t.shape
    k, v = kv(t).reshape(b, n, 2, heads, c // heads).permute(2, 0, 3, 1, 4)
    query = q(t[:, :1]).reshape(b, heads, 1, c // heads) * (c // heads) ** -0.5
    a = torch.matmul(query, k.transpose(-2, -1)).softmax(-1)
    return proj(torch.matmul(a, v).transpose(1, 2).reshape(b, 1, c))


def to_sequence(x: Tensor) -> Tensor:
    """(B, C, T, 1) or (B, C, H, W) -> (B, tokens, C)."""
    return x.flatten(2).transpose(1, 2)


def conv_mlp(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, dim, 1))
