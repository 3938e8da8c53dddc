"""The modules of :mod:`archsearch.blocks.volo`: the Outlooker and class-attention blocks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.blocks.layers.common import Mlp, class_attention, skip


def fold(y: Tensor, size: tuple[int, int], kernel: int, stride: int) -> Tensor:
    """``F.fold`` (overlapping ``kernel x kernel`` patches summed back, padding ``kernel // 2``)
    written with padding, reshapes and sums, which ONNX opset 17 can express (``col2im`` needs
    opset 18). ``y`` is (B, C, kernel^2, h, w), the patches of an (h, w) grid of cells."""
    b, c, _, h, w = y.shape
    k, s, pad = kernel, stride, kernel // 2
    canvas = None
    for i in range(k):
        for j in range(k):
            part = y[:, :, i * k + j, :, None, :, None]  # (B, C, h, 1, w, 1)
            part = F.pad(part, (0, s - 1, 0, 0, 0, s - 1)).reshape(b, c, h * s, w * s)
            part = F.pad(part, (j, k - 1 - j, i, k - 1 - i))
            canvas = part if canvas is None else canvas + part
    assert canvas is not None
    return canvas[:, :, pad : pad + size[0], pad : pad + size[1]]


class OutlookerBlock(nn.Module):
    """LayerNorm, outlook attention, LayerNorm, MLP (both residual) on an NCHW map."""

    def __init__(
        self, dim: int, heads: int, kernel: int, stride: int, hidden: int, *, qkv_bias: bool
    ) -> None:
        super().__init__()
        self.heads, self.kernel, self.stride = heads, kernel, stride
        self.norm1 = nn.LayerNorm(dim)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.attn = nn.Linear(dim, kernel**4 * heads)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)

    def outlook(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        k, s, heads = self.kernel, self.stride, self.heads
        kk, cells = k * k, math.ceil(h / s) * math.ceil(w / s)
        v = F.unfold(self.v(x).permute(0, 3, 1, 2), k, padding=k // 2, stride=s)
        v = v.reshape(b, heads, c // heads, kk, cells).permute(0, 1, 4, 3, 2)
        a = F.avg_pool2d(x.permute(0, 3, 1, 2), s, s, ceil_mode=True).permute(0, 2, 3, 1)
        a = self.attn(a).reshape(b, cells, heads, kk, kk).permute(0, 2, 1, 3, 4)
        a = (a * (c // heads) ** -0.5).softmax(-1)
        y = torch.matmul(a, v).permute(0, 1, 4, 3, 2)  # (B, heads, C / heads, k^2, cells)
        hs, ws = math.ceil(h / s), math.ceil(w / s)
        y = fold(y.reshape(b, c, kk, hs, ws), (h, w), k, s)
        return self.proj(y.permute(0, 2, 3, 1))

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[2], x.shape[3]
        t = x.permute(0, 2, 3, 1)
        t = skip(t) + self.outlook(self.norm1(t))
        t = skip(t) + self.mlp(self.norm2(t), (h, w))
        return t.permute(0, 3, 1, 2)


class ClassAttnBlock(nn.Module):
    """Class attention on a token sequence (B, C, 1 + T, 1): the class token attends to all
    (LayerNormed) tokens, then its MLP; the other tokens pass unchanged."""

    def __init__(self, dim: int, heads: int, hidden: int, *, qkv_bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        t = x.squeeze(-1).transpose(1, 2)
        cls = t[:, :1]
        cls = skip(cls) + class_attention(self.norm1(t), self.q, self.kv, self.proj, self.heads)
        cls = skip(cls) + self.mlp(self.norm2(cls), (1, 1))
        return torch.cat([cls, t[:, 1:]], dim=1).transpose(1, 2).unsqueeze(-1)
