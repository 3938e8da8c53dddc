"""The modules of :mod:`archsearch.blocks.hornet`: HorNet's block with the gnConv mixer."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor, nn

from archsearch.blocks.layers.common import LayerNorm2d, LayerScale, skip


class GnConv(nn.Module):
    """Recursive gated convolution of order ``order`` (depthwise branch scaled by 1/3)."""

    def __init__(self, dim: int, order: int, kernel: int) -> None:
        super().__init__()
        self.dims = [dim // 2**i for i in reversed(range(order))]
        self.proj_in = nn.Conv2d(dim, 2 * dim, 1)
        total = sum(self.dims)
        self.dwconv = nn.Conv2d(total, total, kernel, padding=kernel // 2, groups=total)
        self.pws = nn.ModuleList(nn.Conv2d(a, b, 1) for a, b in pairwise(self.dims))
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        gate, rest = torch.split(self.proj_in(x), [self.dims[0], sum(self.dims)], dim=1)
        parts = torch.split(self.dwconv(rest) / 3.0, self.dims, dim=1)
        y = gate * parts[0]
        for pw, part in zip(self.pws, parts[1:], strict=True):
            y = pw(y) * part
        return self.proj_out(y)


class HorNetBlock(nn.Module):
    """LayerNorm, gnConv, layer scale (residual); LayerNorm, GELU MLP, layer scale (residual)."""

    def __init__(self, dim: int, order: int, kernel: int, hidden: int, *, layer_scale: bool):
        super().__init__()
        self.norm1 = LayerNorm2d(dim, eps=1e-6)
        self.gnconv = GnConv(dim, order, kernel)
        self.gamma1: nn.Module = (
            LayerScale(dim, channels_last=False) if layer_scale else nn.Identity()
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(hidden, dim)
        self.gamma2: nn.Module = LayerScale(dim) if layer_scale else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = skip(x) + self.gamma1(self.gnconv(self.norm1(x)))
        y = self.pwconv2(self.act(self.pwconv1(self.norm2(x.permute(0, 2, 3, 1)))))
        return skip(x) + self.gamma2(y).permute(0, 3, 1, 2)
