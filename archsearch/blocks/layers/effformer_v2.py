"""The modules of :mod:`archsearch.blocks.effformer_v2`: EfficientFormerV2's FFN, attention
block and downsample (biased convs with BatchNorm, GELU)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.blocks.layers.common import ConvNormAct, LayerScale, skip


def _cbn(c_in: int, c_out: int, k: int, *, stride: int = 1, groups: int = 1) -> ConvNormAct:
    return ConvNormAct(c_in, c_out, k, stride=stride, groups=groups, bias=True, act="none")


def _scale(dim: int, on: bool) -> nn.Module:
    return LayerScale(dim, init=1e-5, channels_last=False) if on else nn.Identity()


class EffV2FFN(nn.Module):
    """``x + ls(conv1x1-BN-GELU, dwconv3x3-BN-GELU, conv1x1-BN)``."""

    def __init__(self, dim: int, hidden: int, *, layer_scale: bool) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            ConvNormAct(dim, hidden, 1, bias=True, act="gelu"),
            ConvNormAct(hidden, hidden, 3, groups=hidden, bias=True, act="gelu"),
            _cbn(hidden, dim, 1),
        )
        self.ls = _scale(dim, layer_scale)

    def forward(self, x: Tensor) -> Tensor:
        return skip(x) + self.ls(self.mlp(x))


def _bias_index(q_hw: tuple[int, int], k_hw: tuple[int, int], step: int) -> Tensor:
    """Index of the (|dy|, |dx|) offset between each query (every ``step``-th position) and
    each key of a ``k_hw`` grid, into a table of ``k_hw[0] * k_hw[1]`` biases."""
    qy, qx = torch.meshgrid(
        torch.arange(0, step * q_hw[0], step), torch.arange(0, step * q_hw[1], step), indexing="ij"
    )
    ky, kx = torch.meshgrid(torch.arange(k_hw[0]), torch.arange(k_hw[1]), indexing="ij")
    dy = (qy.flatten()[:, None] - ky.flatten()[None, :]).abs()
    dx = (qx.flatten()[:, None] - kx.flatten()[None, :]).abs()
    return dy * k_hw[1] + dx


class _Attention(nn.Module):
    """Shared by the block's attention and the downsample's: k and v convs, one learned bias
    per head and (|dy|, |dx|) offset between the queries (every ``step``-th position of the
    ``k_hw`` grid) and the keys, the GELU before the projection, splitting into heads and
    merging values with local values."""

    def __init__(
        self,
        dim: int,
        heads: int,
        key_dim: int,
        attn_ratio: int,
        q_hw: tuple[int, int],
        k_hw: tuple[int, int],
        step: int,
    ) -> None:
        super().__init__()
        self.heads, self.key_dim, self.value_dim = heads, key_dim, attn_ratio * key_dim
        self.q_hw = q_hw
        self.dh = heads * self.value_dim
        self.k = _cbn(dim, heads * key_dim, 1)
        self.v = _cbn(dim, self.dh, 1)
        self.act = nn.GELU()
        self.attention_biases = nn.Parameter(torch.zeros(heads, k_hw[0] * k_hw[1]))
        self.bias_index: Tensor
        self.register_buffer("bias_index", _bias_index(q_hw, k_hw, step), persistent=False)

    def scores(self, q: Tensor, k: Tensor) -> Tensor:
        biases = self.attention_biases[:, self.bias_index]
        return torch.matmul(q, k) * self.key_dim**-0.5 + biases

    def split(self, q_map: Tensor, kv_map: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, h = q_map.shape[0], self.heads
        q = q_map.reshape(b, h, self.key_dim, -1).transpose(2, 3)
        k = self.k(kv_map).reshape(b, h, self.key_dim, -1)
        return q, k, self.v(kv_map)

    def merge(self, attn: Tensor, v: Tensor, v_local: Tensor) -> Tensor:
        b = v.shape[0]
        v = v.reshape(b, self.heads, self.value_dim, -1).transpose(2, 3)
        y = torch.matmul(attn, v).transpose(2, 3).reshape(b, self.dh, *self.q_hw)
        return y + v_local


class EffV2Attention(_Attention):
    """EfficientFormerV2's Attention4D with talking heads; ``stride`` 2 attends on the map
    halved by a strided depthwise conv and upsamples the result."""

    def __init__(
        self,
        dim: int,
        heads: int,
        key_dim: int,
        attn_ratio: int,
        *,
        stride: int,
        hw: tuple[int, int],
    ) -> None:
        q_hw = (math.ceil(hw[0] / stride), math.ceil(hw[1] / stride))
        super().__init__(dim, heads, key_dim, attn_ratio, q_hw, q_hw, 1)
        self.stride = stride
        self.stride_conv = _cbn(dim, dim, 3, stride=2, groups=dim) if stride == 2 else None
        self.q = _cbn(dim, heads * key_dim, 1)
        self.v_local = _cbn(self.dh, self.dh, 3, groups=self.dh)
        self.talking_head1 = nn.Conv2d(heads, heads, 1)
        self.talking_head2 = nn.Conv2d(heads, heads, 1)
        self.proj = _cbn(self.dh, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride_conv is not None:
            x = self.stride_conv(x)
        q, k, v = self.split(self.q(x), x)
        attn = self.scores(q, k)
        attn = self.talking_head2(self.talking_head1(attn).softmax(-1))
        y = self.merge(attn, v, self.v_local(v))
        if self.stride_conv is not None:
            y = F.interpolate(y, scale_factor=float(self.stride), mode="bilinear")
        return self.proj(self.act(y))


class EffV2AttnBlock(nn.Module):
    """``x + ls1(attention(x))``, then the FFN block."""

    def __init__(
        self,
        dim: int,
        heads: int,
        key_dim: int,
        attn_ratio: int,
        *,
        stride: int,
        hidden: int,
        hw: tuple[int, int],
        layer_scale: bool,
    ) -> None:
        super().__init__()
        self.token_mixer = EffV2Attention(dim, heads, key_dim, attn_ratio, stride=stride, hw=hw)
        self.ls1 = _scale(dim, layer_scale)
        self.ffn = EffV2FFN(dim, hidden, layer_scale=layer_scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.ffn(skip(x) + self.ls1(self.token_mixer(x)))


class EffV2DownAttention(_Attention):
    """Attention4DDownsample: queries from the half-resolution map (strided depthwise conv plus
    subsampling, then a 1x1 conv), keys and values at full resolution, strided local values."""

    def __init__(
        self, dim: int, out: int, heads: int, key_dim: int, attn_ratio: int, hw: tuple[int, int]
    ) -> None:
        q_hw = (math.ceil(hw[0] / 2), math.ceil(hw[1] / 2))
        super().__init__(dim, heads, key_dim, attn_ratio, q_hw, hw, 2)
        self.local = nn.Conv2d(dim, dim, 3, 2, 1, groups=dim)
        self.pool = nn.AvgPool2d(1, 2, 0)
        self.q = _cbn(dim, heads * key_dim, 1)
        self.v_local = _cbn(self.dh, self.dh, 3, stride=2, groups=self.dh)
        self.proj = _cbn(self.dh, out, 1)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.split(self.q(self.local(x) + self.pool(x)), x)
        attn = self.scores(q, k).softmax(-1)
        return self.proj(self.act(self.merge(attn, v, self.v_local(v))))


class EffV2Down(nn.Module):
    """A 3x3 stride-2 conv with BN, plus the downsampling attention when ``heads`` is given."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        *,
        hw: tuple[int, int],
        heads: int = 0,
        key_dim: int = 16,
        attn_ratio: int = 4,
    ) -> None:
        super().__init__()
        self.conv = _cbn(c_in, c_out, 3, stride=2)
        self.attn = (
            EffV2DownAttention(c_in, c_out, heads, key_dim, attn_ratio, hw) if heads else None
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return y if self.attn is None else y + self.attn(x)
