"""The modules of :mod:`archsearch.blocks.casvit`: CAS-ViT's additive block."""

from __future__ import annotations

from torch import Tensor, nn

from archsearch.blocks.layers.common import skip


def _dw(dim: int) -> nn.Conv2d:
    return nn.Conv2d(dim, dim, 3, padding=1, groups=dim)


class _Gates(nn.Module):
    """A spatial gate (one sigmoid map) then a channel gate (one sigmoid per channel)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.spatial = nn.Sequential(
            _dw(dim),
            nn.BatchNorm2d(dim),
            nn.ReLU(),
            nn.Conv2d(dim, 1, 1, bias=False),
            nn.Sigmoid(),
        )
        self.channel = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, dim, 1, bias=False), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x * self.spatial(x)
        return x * self.channel(x)


class CASViTBlock(nn.Module):
    """Local integration, convolutional additive attention, conv MLP; each residual."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.local = nn.Sequential(
            nn.Conv2d(dim, dim, 1),
            nn.BatchNorm2d(dim),
            _dw(dim),
            nn.GELU(),
            nn.Conv2d(dim, dim, 1),
        )
        self.norm1 = nn.BatchNorm2d(dim)
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=False)
        self.oper_q = _Gates(dim)
        self.oper_k = _Gates(dim)
        self.dwc = _dw(dim)
        self.proj = _dw(dim)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1))

    def mixer(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=1)
        return self.proj(self.dwc(self.oper_q(q) + self.oper_k(k)) * v)

    def forward(self, x: Tensor) -> Tensor:
        x = skip(x) + self.local(x)
        x = skip(x) + self.mixer(self.norm1(x))
        return skip(x) + self.mlp(self.norm2(x))
