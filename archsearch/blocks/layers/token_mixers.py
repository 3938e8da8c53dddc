"""The modules of :mod:`archsearch.blocks.token_mixers` (PoolFormer/MetaFormer, ViT)."""

from __future__ import annotations

from torch import Tensor, nn

from archsearch.blocks.layers.common import Attention, LayerScale, Mlp, skip


class PoolMixer(nn.Module):
    """PoolFormer's token mixer: ``avgpool(x) - x`` (stride 1, padding excluded)."""

    def __init__(self, pool_size: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(pool_size, 1, pool_size // 2, count_include_pad=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(x) - x


class MetaFormerBlock(nn.Module):
    """``x + ls1(mixer(norm1(x)))`` then ``x + ls2(mlp(norm2(x)))`` on NCHW maps."""

    def __init__(
        self,
        mixer: nn.Module,
        mlp: nn.Module,
        *,
        dim: int,
        norm1: nn.Module,
        norm2: nn.Module,
        layer_scale: bool,
    ) -> None:
        super().__init__()
        self.norm1 = norm1
        self.mixer = mixer
        self.norm2 = norm2
        self.mlp = mlp
        self.ls1: nn.Module = (
            LayerScale(dim, init=1e-5, channels_last=False) if layer_scale else nn.Identity()
        )
        self.ls2: nn.Module = (
            LayerScale(dim, init=1e-5, channels_last=False) if layer_scale else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        x = skip(x) + self.ls1(self.mixer(self.norm1(x)))
        return skip(x) + self.ls2(self.mlp(self.norm2(x)))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block on an NCHW map, flattened to tokens and back."""

    def __init__(
        self,
        dim: int,
        heads: int,
        hidden: int,
        *,
        qkv_bias: bool,
        sr: int = 0,
        linear: bool = False,
        mlp_dwconv: bool = False,
        layer_scale: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, qkv_bias=qkv_bias, sr=sr, linear=linear)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden, dwconv=mlp_dwconv, extra_relu=linear)
        self.ls1: nn.Module = LayerScale(dim) if layer_scale else nn.Identity()
        self.ls2: nn.Module = LayerScale(dim) if layer_scale else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = skip(t) + self.ls1(self.attn(self.norm1(t), (h, w)))
        t = skip(t) + self.ls2(self.mlp(self.norm2(t), (h, w)))
        return t.transpose(1, 2).reshape(b, c, h, w)


def poolformer_block(
    dim: int, *, hidden: int, pool_size: int, norm: str, layer_scale: bool
) -> MetaFormerBlock:
    """PoolFormer's block (``norm: gn``: GroupNorm, GELU MLP) or EfficientFormer's 4D block
    (``norm: bn``: no norm before the mixers, a conv-BN MLP)."""
    if norm == "gn":
        mlp = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1))
        norm1: nn.Module = nn.GroupNorm(1, dim)
        norm2: nn.Module = nn.GroupNorm(1, dim)
    else:
        mlp = nn.Sequential(
            nn.Conv2d(dim, hidden, 1),
            nn.BatchNorm2d(hidden),
            nn.GELU(),
            nn.Conv2d(hidden, dim, 1),
            nn.BatchNorm2d(dim),
        )
        norm1, norm2 = nn.Identity(), nn.Identity()
    return MetaFormerBlock(
        PoolMixer(pool_size), mlp, dim=dim, norm1=norm1, norm2=norm2, layer_scale=layer_scale
    )
