"""The modules of :mod:`archsearch.blocks.uniformer`: UniFormer's convolutional block."""

from __future__ import annotations

from torch import Tensor, nn

from archsearch.blocks.layers.common import skip


class UniFormerConvBlock(nn.Module):
    """BN, 1x1, kxk depthwise, 1x1 (residual); BN, 1x1-GELU-1x1 MLP (residual); biased convs."""

    def __init__(self, dim: int, kernel: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.attn = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = skip(x) + self.conv2(self.attn(self.conv1(self.norm1(x))))
        return skip(x) + self.mlp(self.norm2(x))
