"""The modules of :mod:`archsearch.blocks.hybrid` (Next-ViT, CvT)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.blocks.layers.common import (
    ConvNormAct,
    LayerNorm2d,
    QuickGELU,
    conv_mlp,
    skip,
    to_sequence,
)


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
            side = math.isqrt(int(x.shape[2]) - 1)  # a class token + side x side tokens
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
