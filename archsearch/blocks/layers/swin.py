"""The modules of :mod:`archsearch.blocks.swin`: the Swin block and PatchMerging."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.blocks.layers.common import Mlp, skip


def _windows(x: Tensor, ws: int) -> Tensor:
    """(B, H, W, C) -> (B * windows, ws * ws, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // ws, ws, w // ws, ws, c).transpose(2, 3)
    return x.reshape(-1, ws * ws, c)


def _unwindows(x: Tensor, ws: int, b: int, h: int, w: int) -> Tensor:
    """The inverse of :func:`_windows`."""
    c = x.shape[-1]
    x = x.reshape(b, h // ws, w // ws, ws, ws, c).transpose(2, 3)
    return x.reshape(b, h, w, c)


class SwinBlock(nn.Module):
    """Swin block on an NCHW map of ``hw``: (shifted) window attention with a relative-position
    bias table, then an MLP, each pre-normed and residual."""

    def __init__(
        self,
        dim: int,
        heads: int,
        window: int,
        shift: int,
        hidden: int,
        hw: tuple[int, int],
        *,
        qkv_bias: bool,
    ) -> None:
        super().__init__()
        self.heads, self.window, self.shift = heads, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        side = 2 * window - 1
        self.relative_position_bias_table = nn.Parameter(torch.zeros(side * side, heads))
        ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        pos = torch.stack((ys.flatten(), xs.flatten()))
        rel = pos[:, :, None] - pos[:, None, :] + (window - 1)  # signed offsets, from 0
        self.bias_index: Tensor
        self.register_buffer("bias_index", rel[0] * side + rel[1], persistent=False)
        # Shifted windows gather pixels from up to four regions of the map: a key from another
        # region than its query's is masked (-100 before the softmax, as the official code).
        mask = torch.zeros(1, 1, 1)
        if shift:
            h, w = hw
            region = torch.zeros(1, h, w, 1)
            cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
            label = 0
            for rows in cuts:
                for cols in cuts:
                    region[:, rows, cols, :] = label
                    label += 1
            ids = _windows(region, window).squeeze(-1)  # (windows, m)
            mask = (ids[:, None, :] != ids[:, :, None]).float() * -100.0
        self.attn_mask: Tensor
        self.register_buffer("attn_mask", mask, persistent=False)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        ws, s, heads = self.window, self.shift, self.heads
        t = x.permute(0, 2, 3, 1)
        y = self.norm1(t)
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        y = _windows(y, ws)
        nw, m = y.shape[0] // b, ws * ws
        q, k, v = self.qkv(y).reshape(b * nw, m, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        bias = self.relative_position_bias_table[self.bias_index].permute(2, 0, 1)
        if s:
            # (b, windows, heads, m, m) -> (b * windows, heads, m, m)
            bias = (bias[None, None] + self.attn_mask[None, :, None]).expand(b, -1, -1, -1, -1)
            bias = bias.reshape(b * nw, heads, m, m)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        y = self.proj(y.transpose(1, 2).reshape(b * nw, m, c))
        y = _unwindows(y, ws, b, h, w)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        t = skip(t) + y
        t = skip(t) + self.mlp(self.norm2(t), (h, w))
        return t.permute(0, 3, 1, 2)


class SwinMerge(nn.Module):
    """Swin's PatchMerging: every 2x2 neighbourhood's channels concatenated (4C), LayerNorm,
    bias-free linear."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * c_in)
        self.reduction = nn.Linear(4 * c_in, c_out, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        # (B, C, H/2, 2, W/2, 2) -> (B, H/2, W/2, 2 (col), 2 (row), C): the official order
        # x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2].
        t = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 5, 3, 1)
        t = self.reduction(self.norm(t.reshape(b, h // 2, w // 2, 4 * c)))
        return t.permute(0, 3, 1, 2)
