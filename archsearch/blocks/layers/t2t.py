"""The modules of :mod:`archsearch.blocks.t2t`: T2T-ViT's soft split and Performer layer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.blocks.layers.common import skip


class SoftSplit(nn.Module):
    """Unfolds ``kernel x kernel`` patches into the channels of the output grid."""

    def __init__(self, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        k, s, p = self.kernel, self.stride, self.padding
        h = (x.shape[2] + 2 * p - k) // s + 1
        w = (x.shape[3] + 2 * p - k) // s + 1
        y = F.unfold(x, k, padding=p, stride=s)
        return y.reshape(x.shape[0], -1, h, w)


class T2TPerformer(nn.Module):
    """One-head Performer attention with the values as skip, then an MLP (residual)."""

    def __init__(self, dim: int, out: int, features: int, hidden: int) -> None:
        super().__init__()
        self.out, self.features = out, features
        self.norm1 = nn.LayerNorm(dim)
        self.kqv = nn.Linear(dim, 3 * out)
        self.proj = nn.Linear(out, out)
        self.norm2 = nn.LayerNorm(out)
        self.mlp = nn.Sequential(nn.Linear(out, hidden), nn.GELU(), nn.Linear(hidden, out))
        w = nn.init.orthogonal_(torch.empty(features, out)) * math.sqrt(features)
        self.w: Tensor
        self.register_buffer("w", w)  # fixed random features: not trained

    def _features(self, x: Tensor) -> Tensor:
        half_norm = (x * x).sum(-1, keepdim=True) / 2
        return torch.exp(torch.matmul(x, self.w.t()) - half_norm) / math.sqrt(self.features)

    def attention(self, x: Tensor) -> Tensor:
        k, q, v = torch.split(self.kqv(x), self.out, dim=-1)
        kp, qp = self._features(k), self._features(q)
        norm = torch.matmul(qp, kp.sum(1).unsqueeze(-1))  # (B, T, 1)
        kv = torch.matmul(v.transpose(1, 2), kp)  # (B, out, features)
        y = torch.matmul(qp, kv.transpose(1, 2)) / (norm + 1e-8)
        return skip(v) + self.proj(y)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        t = self.attention(self.norm1(x.flatten(2).transpose(1, 2)))
        t = skip(t) + self.mlp(self.norm2(t))
        return t.transpose(1, 2).reshape(b, self.out, h, w)
