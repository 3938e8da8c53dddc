"""The modules of :mod:`archsearch.blocks.resnas` (ViT-ResNAS)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.blocks.layers.common import LayerNorm2d, skip


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
