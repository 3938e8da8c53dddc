"""Modules of multi-stream networks: an image resize and CrossViT's class-token fusion."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.blocks.layers.common import class_attention, make_act, skip, to_sequence


class Resize(nn.Module):
    """Resizes a map to ``size x size`` (``F.interpolate``, ``align_corners=False``)."""

    def __init__(self, size: int, mode: str = "bicubic") -> None:
        super().__init__()
        self.size = size
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "nearest":
            return F.interpolate(x, size=(self.size, self.size), mode="nearest")
        return F.interpolate(x, size=(self.size, self.size), mode=self.mode, align_corners=False)


class CrossClsFusion(nn.Module):
    """CrossViT's fusion of one stream with another (Chen et al., ICCV 2021).

    The stream's class token is projected to the other stream's width (LayerNorm, activation,
    linear), attends as the only query over itself and the other stream's patch tokens
    (LayerNorm, then class attention at the other width, with a residual link),
    and is projected back (LayerNorm, activation, linear); the stream's patch tokens pass
    unchanged. Both inputs are token sequences ``(B, C, T, 1)`` with the class token first.
    LayerNorm eps is 1e-6, as in the official code.
    """

    def __init__(
        self, dim: int, context: int, heads: int, *, qkv_bias: bool = True, act: str = "gelu"
    ) -> None:
        super().__init__()
        self.heads = heads
        self.proj = nn.Sequential(
            nn.LayerNorm(dim, eps=1e-6), make_act(act), nn.Linear(dim, context)
        )
        self.norm = nn.LayerNorm(context, eps=1e-6)
        self.q = nn.Linear(context, context, bias=qkv_bias)
        self.kv = nn.Linear(context, 2 * context, bias=qkv_bias)
        self.out = nn.Linear(context, context)
        self.revert = nn.Sequential(
            nn.LayerNorm(context, eps=1e-6), make_act(act), nn.Linear(context, dim)
        )

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        tokens = to_sequence(x)  # (B, T, C)
        cls = self.proj(tokens[:, :1])  # (B, 1, D)
        seq = self.norm(torch.cat([cls, to_sequence(context)[:, 1:]], dim=1))  # (B, N, D)
        cls = self.revert(skip(cls) + class_attention(seq, self.q, self.kv, self.out, self.heads))
        return torch.cat([cls, tokens[:, 1:]], dim=1).transpose(1, 2).unsqueeze(-1)


class WithContext(nn.Module):
    """A block that reads a second stream, given a fixed random one of ``context`` shape (no
    batch), so that it runs, and is timed, as a one-input module (latency profiling)."""

    def __init__(self, block: nn.Module, context: tuple[int, int, int]) -> None:
        super().__init__()
        self.block = block
        self.context: Tensor
        self.register_buffer("context", torch.randn(1, *context), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        context = self.context.expand(x.shape[0], -1, -1, -1)
        return self.block(x, context)
