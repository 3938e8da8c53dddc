"""The modules of :mod:`archsearch.blocks.convit`: ConViT's GPSA block."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from archsearch.blocks.layers.common import Mlp, skip


class GPSABlock(nn.Module):
    """LayerNorm, gated positional self-attention, LayerNorm, MLP (both residual) on the tokens
    of a ``grid`` (a map, or a sequence (B, C, T, 1) in row-major grid order)."""

    def __init__(
        self, dim: int, heads: int, hidden: int, grid: tuple[int, int], *, qkv_bias: bool
    ) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qk = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.pos_proj = nn.Linear(3, heads)
        self.gating_param = nn.Parameter(torch.ones(heads))
        ys, xs = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
        ys, xs = ys.flatten().float(), xs.flatten().float()
        dx, dy = xs[None, :] - xs[:, None], ys[None, :] - ys[:, None]
        self.rel: Tensor
        self.register_buffer("rel", torch.stack((dx, dy, dx**2 + dy**2), -1), persistent=False)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)

    def attention(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        h = self.heads
        q, k = self.qk(x).reshape(b, n, 2, h, c // h).permute(2, 0, 3, 1, 4)
        v = self.v(x).reshape(b, n, h, c // h).transpose(1, 2)
        content = (torch.matmul(q, k.transpose(-2, -1)) * (c // h) ** -0.5).softmax(-1)
        position = self.pos_proj(self.rel).permute(2, 0, 1).softmax(-1)[None]
        gate = torch.sigmoid(self.gating_param).view(1, -1, 1, 1)
        attn = (1.0 - gate) * content + gate * position
        attn = attn / attn.sum(-1, keepdim=True)
        return self.proj(torch.matmul(attn, v).transpose(1, 2).reshape(b, n, c))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = skip(t) + self.attention(self.norm1(t))
        t = skip(t) + self.mlp(self.norm2(t), (h, w))
        return t.transpose(1, 2).reshape(b, c, h, w)
