"""Torch layers the block families compose in their ``build`` methods.

This module imports torch at the top; nothing outside a ``build`` method imports it, so that
counting, the space machinery, the store and the CLI's read-only commands stay torch-free.
"""

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
    """An activation module by name: relu, gelu, silu, hswish or none."""
    acts: dict[str, type[nn.Module]] = {
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "hswish": nn.Hardswish,
        "none": nn.Identity,
    }
    return acts[name]()


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (as ConvNeXt's ``channels_first`` norm)."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def make_norm2d(kind: str, channels: int) -> nn.Module:
    """A normalisation of NCHW maps: bn, ln (over channels), gn (one group) or none."""
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "ln":
        return LayerNorm2d(channels, eps=1e-6)
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
    """Squeeze-and-excitation (Hu et al., 2018) with biased 1x1 convolutions, as in timm."""

    def __init__(self, channels: int, squeeze: int, act: str) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1, bias=True)
        self.act = make_act(act)
        self.expand = nn.Conv2d(squeeze, channels, 1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.expand(self.act(self.reduce(s)))
        return x * torch.sigmoid(s)


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


class TransformerBlock(nn.Module):
    """Pre-norm transformer block on an NCHW map, flattened to tokens and back."""

    def __init__(
        self,
        dim: int,
        heads: int,
        hidden: int,
        *,
        qkv_bias: bool,
        sr: int = 0,
        linear: bool = False,
        mlp_dwconv: bool = False,
        layer_scale: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, qkv_bias=qkv_bias, sr=sr, linear=linear)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden, dwconv=mlp_dwconv, extra_relu=linear)
        self.ls1: nn.Module = LayerScale(dim) if layer_scale else nn.Identity()
        self.ls2: nn.Module = LayerScale(dim) if layer_scale else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = skip(t) + self.ls1(self.attn(self.norm1(t), (h, w)))
        t = skip(t) + self.ls2(self.mlp(self.norm2(t), (h, w)))
        return t.transpose(1, 2).reshape(b, c, h, w)


class BiasedAttention(nn.Module):
    """Attention with learned relative-position biases (EfficientFormer, TinyViT, LeViT).

    ``heads`` heads of ``key_dim`` for queries/keys and ``value_dim`` for values, one bias per
    head and per (|dy|, |dx|) offset of an ``res_h x res_w`` grid (``res_h * res_w`` per head),
    added to the attention logits.
    """

    def __init__(
        self, dim: int, heads: int, key_dim: int, value_dim: int, res_h: int, res_w: int
    ) -> None:
        super().__init__()
        self.heads, self.key_dim, self.value_dim = heads, key_dim, value_dim
        self.qkv = nn.Linear(dim, heads * (2 * key_dim + value_dim))
        self.proj = nn.Linear(heads * value_dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(heads, res_h * res_w))
        ys, xs = torch.meshgrid(torch.arange(res_h), torch.arange(res_w), indexing="ij")
        pos = torch.stack((ys.flatten(), xs.flatten()))
        rel = (pos[:, :, None] - pos[:, None, :]).abs()
        self.bias_index: Tensor
        self.register_buffer("bias_index", rel[0] * res_w + rel[1], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        qkv = self.qkv(x).view(b, n, self.heads, -1)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.value_dim], dim=3)
        bias = self.attention_biases[:, self.bias_index]
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=bias
        )
        return self.proj(y.transpose(1, 2).reshape(b, n, self.heads * self.value_dim))


class MetaBlock3d(nn.Module):
    """EfficientFormer's Meta3D block on an NCHW map, flattened to tokens inside."""

    def __init__(
        self,
        dim: int,
        heads: int,
        key_dim: int,
        attn_ratio: int,
        hidden: int,
        hw: tuple[int, int],
        *,
        layer_scale: bool,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = BiasedAttention(dim, heads, key_dim, attn_ratio * key_dim, *hw)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)
        self.ls1: nn.Module = LayerScale(dim, init=1e-5) if layer_scale else nn.Identity()
        self.ls2: nn.Module = LayerScale(dim, init=1e-5) if layer_scale else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = skip(t) + self.ls1(self.attn(self.norm1(t)))
        t = skip(t) + self.ls2(self.mlp(self.norm2(t), (h, w)))
        return t.transpose(1, 2).reshape(b, c, h, w)


class TinyViTBlock(nn.Module):
    """TinyViT block: windowed biased attention, depthwise local conv, MLP (each pre-normed)."""

    def __init__(self, dim: int, heads: int, window: int, hidden: int, local_conv: int) -> None:
        super().__init__()
        self.window = window
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = BiasedAttention(dim, heads, dim // heads, dim // heads, window, window)
        self.local_conv = ConvNormAct(dim, dim, local_conv, groups=dim, act="none")
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        ws = self.window
        t = x.permute(0, 2, 3, 1)
        pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
        y = F.pad(t, (0, 0, 0, pad_r, 0, pad_b)) if pad_b or pad_r else t
        ph, pw = h + pad_b, w + pad_r
        nh, nw = ph // ws, pw // ws
        y = y.reshape(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
        y = self.attn(self.attn_norm(y))
        y = y.view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, ph, pw, c)[:, :h, :w]
        x = (skip(t) + y).permute(0, 3, 1, 2)
        x = self.local_conv(x)
        t = x.flatten(2).transpose(1, 2)
        t = skip(t) + self.mlp(self.mlp_norm(t), (h, w))
        return t.transpose(1, 2).reshape(b, c, h, w)


class NextPatchEmbed(nn.Module):
    """Next-ViT's PatchEmbed: [2x2 average pool], 1x1 conv and BN when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.pool: nn.Module = (
            nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)
            if stride == 2
            else nn.Identity()
        )
        self.proj: nn.Module = (
            ConvNormAct(c_in, c_out, 1, act="none")
            if stride == 2 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.pool(x))


class ConvAttention(nn.Sequential):
    """Next-ViT's multi-head convolutional attention: grouped 3x3 conv, BN, ReLU, 1x1 conv."""

    def __init__(self, dim: int, head_dim: int) -> None:
        super().__init__(
            ConvNormAct(dim, dim, 3, groups=dim // head_dim, act="relu"),
            nn.Conv2d(dim, dim, 1, bias=False),
        )


def conv_mlp(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, dim, 1))


class NextConvBlock(nn.Module):
    """Next-ViT NCB: patch embed, x + MHCA(x), x + MLP(BN(x))."""

    def __init__(self, c_in: int, c_out: int, stride: int, hidden: int, head_dim: int) -> None:
        super().__init__()
        self.patch_embed = NextPatchEmbed(c_in, c_out, stride)
        self.mhca = ConvAttention(c_out, head_dim)
        self.norm = nn.BatchNorm2d(c_out)
        self.mlp = conv_mlp(c_out, hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)
        x = skip(x) + self.mhca(x)
        return skip(x) + self.mlp(self.norm(x))


class EfficientAttention(nn.Module):
    """Next-ViT's E-MHSA: keys/values from the token sequence average-pooled by sr^2."""

    def __init__(self, dim: int, head_dim: int, sr: int) -> None:
        super().__init__()
        self.heads = dim // head_dim
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.reduce: nn.Module | None = None
        if sr > 1:
            self.reduce = nn.Sequential(nn.AvgPool1d(sr * sr, sr * sr), nn.BatchNorm1d(dim))

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        h = self.heads
        q = self.q(x).reshape(b, n, h, c // h).transpose(1, 2)
        kv = x if self.reduce is None else self.reduce(x.transpose(1, 2)).transpose(1, 2)
        k = self.k(kv).reshape(b, -1, h, c // h).transpose(1, 2)
        v = self.v(kv).reshape(b, -1, h, c // h).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


class NextTransformerBlock(nn.Module):
    """Next-ViT NTB: E-MHSA on the first ``mhsa_out`` channels, MHCA on the rest, then MLP."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        sr: int,
        head_dim: int,
        mhsa_out: int,
        hidden: int,
    ) -> None:
        super().__init__()
        mhca_out = c_out - mhsa_out
        self.patch_embed = NextPatchEmbed(c_in, mhsa_out, stride)
        self.norm1 = nn.BatchNorm2d(mhsa_out)
        self.e_mhsa = EfficientAttention(mhsa_out, head_dim, sr)
        self.projection = NextPatchEmbed(mhsa_out, mhca_out, 1)
        self.mhca = ConvAttention(mhca_out, head_dim)
        self.norm2 = nn.BatchNorm2d(c_out)
        self.mlp = conv_mlp(c_out, hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)
        b, c, h, w = x.shape
        out = self.e_mhsa(self.norm1(x).flatten(2).transpose(1, 2))
        x = skip(x) + out.transpose(1, 2).reshape(b, c, h, w)
        out = self.projection(x)
        x = torch.cat([x, skip(out) + self.mhca(out)], dim=1)
        return skip(x) + self.mlp(self.norm2(x))


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``, CvT's (and CLIP's) GELU approximation."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


def to_sequence(x: Tensor) -> Tensor:
    """(B, C, T, 1) or (B, C, H, W) -> (B, tokens, C)."""
    return x.flatten(2).transpose(1, 2)


class CvTEmbed(nn.Module):
    """CvT's convolutional token embedding (conv, LayerNorm), with an optional class token.

    With a class token the output is a token sequence laid out as (B, C, 1 + H*W, 1).
    """

    def __init__(self, c_in: int, dim: int, k: int, stride: int, padding: int, cls: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, dim, k, stride, padding)
        self.norm = LayerNorm2d(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, dim, 1)) if cls else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(self.conv(x))
        if self.cls_token is None:
            return x
        seq = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x.flatten(2)], dim=2)
        return seq.unsqueeze(-1)


class CvTBlock(nn.Module):
    """CvT block: depthwise-conv projections of q/k/v (BN), attention, MLP; pre-norm."""

    def __init__(
        self,
        dim: int,
        heads: int,
        hidden: int,
        kernel: int,
        stride_kv: int,
        *,
        cls: bool,
        qkv_bias: bool,
    ) -> None:
        super().__init__()
        self.heads, self.cls = heads, cls
        self.norm1 = nn.LayerNorm(dim)

        def dw(stride: int) -> nn.Module:
            return ConvNormAct(dim, dim, kernel, stride=stride, groups=dim, act="none")

        self.conv_q, self.conv_k, self.conv_v = dw(1), dw(stride_kv), dw(stride_kv)
        self.proj_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj_k = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj_v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.scale = dim**-0.5  # CvT scales by the full width, not the head width
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), QuickGELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        b, c = x.shape[:2]
        if self.cls:
            side = round((x.shape[2] - 1) ** 0.5)
            h = w = side
        else:
            h, w = x.shape[2], x.shape[3]
        t = to_sequence(x)
        y = self.norm1(t)
        cls_tok = y[:, :1] if self.cls else None
        m = (y[:, 1:] if self.cls else y).transpose(1, 2).reshape(b, c, h, w)
        q, k, v = (to_sequence(conv(m)) for conv in (self.conv_q, self.conv_k, self.conv_v))
        if cls_tok is not None:
            q, k, v = (torch.cat([cls_tok, z], dim=1) for z in (q, k, v))
        nh = self.heads

        def split(z: Tensor) -> Tensor:
            return z.reshape(b, z.shape[1], nh, c // nh).transpose(1, 2)

        att = F.scaled_dot_product_attention(
            split(self.proj_q(q)), split(self.proj_k(k)), split(self.proj_v(v)), scale=self.scale
        )
        t = skip(t) + self.proj(att.transpose(1, 2).reshape(b, -1, c))
        t = skip(t) + self.mlp(self.norm2(t))
        if self.cls:
            return t.transpose(1, 2).unsqueeze(-1)
        return t.transpose(1, 2).reshape(b, c, h, w)


class ViTEmbed(nn.Module):
    """ViT's patch embedding with an optional class token and a learned position embedding.

    Output: a token sequence laid out as (B, C, tokens, 1).
    """

    def __init__(
        self, c_in: int, dim: int, patch: int, tokens: int, *, cls: bool, pos: bool
    ) -> None:
        super().__init__()
        self.proj = nn.Conv2d(c_in, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, dim, 1)) if cls else None
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, tokens)) if pos else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x).flatten(2)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=2)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        return x.unsqueeze(-1)


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


class ConvNeXtBlock(nn.Module):
    """Depthwise kxk conv, LayerNorm, MLP (channels-last linears), layer scale, residual."""

    def __init__(self, dim: int, kernel: int, hidden: int, *, layer_scale: bool) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(hidden, dim)
        self.gamma: nn.Module = LayerScale(dim) if layer_scale else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return skip(x) + self.gamma(y).permute(0, 3, 1, 2)


class PoolMixer(nn.Module):
    """PoolFormer's token mixer: ``avgpool(x) - x`` (stride 1, padding excluded)."""

    def __init__(self, pool_size: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(pool_size, 1, pool_size // 2, count_include_pad=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(x) - x


class MetaFormerBlock(nn.Module):
    """``x + ls1(mixer(norm1(x)))`` then ``x + ls2(mlp(norm2(x)))`` on NCHW maps."""

    def __init__(
        self,
        mixer: nn.Module,
        mlp: nn.Module,
        *,
        dim: int,
        norm1: nn.Module,
        norm2: nn.Module,
        layer_scale: bool,
    ) -> None:
        super().__init__()
        self.norm1 = norm1
        self.mixer = mixer
        self.norm2 = norm2
        self.mlp = mlp
        self.ls1: nn.Module = (
            LayerScale(dim, init=1e-5, channels_last=False) if layer_scale else nn.Identity()
        )
        self.ls2: nn.Module = (
            LayerScale(dim, init=1e-5, channels_last=False) if layer_scale else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        x = skip(x) + self.ls1(self.mixer(self.norm1(x)))
        return skip(x) + self.ls2(self.mlp(self.norm2(x)))


class Head(nn.Module):
    """[1x1 conv, BN, act], [norm], pool (average or class token), [norm], linear(s)."""

    def __init__(
        self,
        c_in: int,
        num_classes: int,
        *,
        hidden: int,
        act: str,
        prenorm: str,
        pool: str,
        norm: str,
        distill: bool,
    ) -> None:
        super().__init__()
        self.conv: nn.Module = ConvNormAct(c_in, hidden, 1, act=act) if hidden else nn.Identity()
        width = hidden or c_in
        self.prenorm = make_norm2d(prenorm, width)
        self.pool = pool
        norms: dict[str, nn.Module] = {
            "ln": nn.LayerNorm(width, eps=1e-6),
            "bn": nn.BatchNorm1d(width),
            "none": nn.Identity(),
        }
        self.norm = norms[norm]
        self.fc = nn.Linear(width, num_classes)
        self.fc_dist = nn.Linear(width, num_classes) if distill else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.prenorm(self.conv(x))
        x = x[:, :, 0, 0] if self.pool == "cls" else x.mean((2, 3))
        x = self.norm(x)
        if self.fc_dist is None:
            return self.fc(x)
        return (self.fc(x) + self.fc_dist(x)) / 2


class PosPatchEmbed(nn.Module):
    """ViT-ResNAS patch embedding: ``p x p`` stride-``p`` conv plus a map position embedding."""

    def __init__(self, c_in: int, dim: int, patch: int, hw: tuple[int, int], *, pos: bool):
        super().__init__()
        self.proj = nn.Conv2d(c_in, dim, patch, patch)
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, *hw)) if pos else None
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)
        return x if self.pos_embed is None else x + self.pos_embed


class ResidualReduction(nn.Module):
    """ViT-ResNAS residual spatial reduction: LN, 3x3/2 conv, new position embedding, plus
    2x2 average pooling with zero-padded channels on the residual path."""

    def __init__(self, c_in: int, dim: int, hw: tuple[int, int], *, pos: bool) -> None:
        super().__init__()
        self.norm = LayerNorm2d(c_in)
        self.conv = nn.Conv2d(c_in, dim, 3, 2, 1)
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, *hw)) if pos else None
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.extra = dim - c_in

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(self.norm(x))
        if self.pos_embed is not None:
            y = y + self.pos_embed
        r = F.avg_pool2d(skip(x), 2, 2, ceil_mode=True)
        return y + F.pad(r, (0, 0, 0, 0, 0, self.extra))


class ResNASBlock(nn.Module):
    """Pre-norm transformer block with ``heads`` heads of ``head_dim`` (ViT-ResNAS): separate
    q, k and v projections so that a block with fewer heads is a prefix of a larger one."""

    def __init__(
        self, dim: int, heads: int, head_dim: int, hidden: int, *, qkv_bias: bool
    ) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.norm1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, inner, bias=qkv_bias)
        self.k = nn.Linear(dim, inner, bias=qkv_bias)
        self.v = nn.Linear(dim, inner, bias=qkv_bias)
        self.proj = nn.Linear(inner, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        y = self.norm1(t)
        q, k, v = (
            p(y).reshape(b, h * w, self.heads, self.head_dim).transpose(1, 2)
            for p in (self.q, self.k, self.v)
        )
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, h * w, -1)
        t = skip(t) + self.proj(a)
        t = skip(t) + self.fc2(self.act(self.fc1(self.norm2(t))))
        return t.transpose(1, 2).reshape(b, c, h, w)


class Network(nn.Module):
    """The module ``archsearch.build`` returns: stem, stages (downsample + blocks), head."""

    def __init__(self, stem: nn.Module, stages: list[nn.Sequential], head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.head = head

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))


class _Zero(nn.Module):
    """NAS-Bench-201's ``none`` operation: a zero map of the input's shape."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0)


def _nb201_op(name: str, c: int) -> nn.Module:
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    k = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}[name]
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, 1, k // 2, bias=False), nn.BatchNorm2d(c))


class NB201CellModule(nn.Module):
    """NAS-Bench-201's cell: node ``i`` sums ``op(node j)`` over its incoming edges; the cell
    returns node 3. ``edges`` lists ``(i, j)`` pairs, ``ops`` their operations."""

    def __init__(self, c: int, ops: list[str], edges: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        self.edges = edges
        self.ops = nn.ModuleList(_nb201_op(op, c) for op in ops)

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        for i in range(1, 4):
            terms = [
                op(nodes[j]) for (to, j), op in zip(self.edges, self.ops, strict=True) if to == i
            ]
            node = terms[0]
            for t in terms[1:]:
                node = node + t
            nodes.append(node)
        return nodes[3]
