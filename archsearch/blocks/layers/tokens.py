"""The modules of :mod:`archsearch.blocks.tokens`: positional encodings, a class token."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from archsearch.blocks.layers.common import skip


class PosConv(nn.Module):
    """``x + dwconv(x)`` on a map, or on a token sequence (B, C, T, 1) laid out as its ``grid``
    (the class token first, if ``cls``, unchanged)."""

    def __init__(self, dim: int, kernel: int, grid: tuple[int, int], *, cls: bool) -> None:
        super().__init__()
        self.grid, self.cls = grid, cls
        self.proj = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)

    def forward(self, x: Tensor) -> Tensor:
        b, c, _, w = x.shape
        if w != 1:
            return skip(x) + self.proj(x)
        head = x[:, :, :1] if self.cls else x[:, :, :0]
        body = x[:, :, int(self.cls) :]
        m = body.reshape(b, c, self.grid[0], self.grid[1])
        m = skip(m) + self.proj(m)
        return torch.cat([head, m.reshape(b, c, -1, 1)], dim=2)


class ClsToken(nn.Module):
    """Prepends a learned class token: (B, C, H, W) or (B, C, T, 1) -> (B, C, 1 + HW, 1)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        t = x.flatten(2)
        return torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=2).unsqueeze(-1)


class PosEmbed(nn.Module):
    """Adds a (C, H, W) position embedding (a sequence is (C, T, 1)): learned, or the fixed
    sinusoid table (a buffer): position i, channel j: sin (j even) or cos (j odd) of
    ``i / 10000^(2 (j // 2) / C)``, positions in row-major order."""

    def __init__(self, channels: int, h: int, w: int, *, learned: bool = True) -> None:
        super().__init__()
        self.pos_embed: Tensor
        if learned:
            self.pos_embed = nn.Parameter(torch.zeros(1, channels, h, w))
            return
        pos = torch.arange(h * w, dtype=torch.float64)[:, None]
        j = torch.arange(channels)
        angle = pos / torch.pow(10000.0, 2 * (j // 2) / channels).double()
        table = torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle)).float()
        self.register_buffer("pos_embed", table.t().reshape(1, channels, h, w))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.pos_embed
