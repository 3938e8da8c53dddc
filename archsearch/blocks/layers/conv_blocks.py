"""The modules of :mod:`archsearch.blocks.conv_blocks` (ConvNeXt)."""

from __future__ import annotations

from torch import Tensor, nn

from archsearch.blocks.layers.common import LayerScale, skip


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
