"""The modules of :mod:`archsearch.blocks.vit`: EfficientFormer's Meta3D, TinyViT and the
ViT embedding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsearch.blocks.layers.common import ConvNormAct, LayerScale, Mlp, skip


class BiasedAttention(nn.Module):
    """Attention with learned relative-position biases (EfficientFormer, TinyViT, LeViT).

    ``heads`` heads of ``key_dim`` for queries/keys and ``value_dim`` for values, one bias per
    head and per (|dy|, |dx|) offset of an ``res_h x res_w`` grid (``res_h * res_w`` per head),
    added to the attention logits.
    """

    def __init__(
        self, dim: int, heads: int, key_dim: int, value_dim: int, res_h: int, res_w: int
    ) -> None:
        super().__init__()
        self.heads, self.key_dim, self.value_dim = heads, key_dim, value_dim
        self.qkv = nn.Linear(dim, heads * (2 * key_dim + value_dim))
        self.proj = nn.Linear(heads * value_dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(heads, res_h * res_w))
        ys, xs = torch.meshgrid(torch.arange(res_h), torch.arange(res_w), indexing="ij")
        pos = torch.stack((ys.flatten(), xs.flatten()))
        rel = (pos[:, :, None] - pos[:, None, :]).abs()
        self.bias_index: Tensor
        self.register_buffer("bias_index", rel[0] * res_w + rel[1], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        qkv = self.qkv(x).view(b, n, self.heads, -1)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.value_dim], dim=3)
        bias = self.attention_biases[:, self.bias_index]
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=bias
        )
        return self.proj(y.transpose(1, 2).reshape(b, n, self.heads * self.value_dim))


class MetaBlock3d(nn.Module):
    """EfficientFormer's Meta3D block on an NCHW map, flattened to tokens inside."""

    def __init__(
        self,
        dim: int,
        heads: int,
        key_dim: int,
        attn_ratio: int,
        hidden: int,
        hw: tuple[int, int],
        *,
        layer_scale: bool,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = BiasedAttention(dim, heads, key_dim, attn_ratio * key_dim, *hw)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)
        self.ls1: nn.Module = LayerScale(dim, init=1e-5) if layer_scale else nn.Identity()
        self.ls2: nn.Module = LayerScale(dim, init=1e-5) if layer_scale else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = skip(t) + self.ls1(self.attn(self.norm1(t)))
        t = skip(t) + self.ls2(self.mlp(self.norm2(t), (h, w)))
        return t.transpose(1, 2).reshape(b, c, h, w)


class TinyViTBlock(nn.Module):
    """TinyViT block: windowed biased attention, depthwise local conv, MLP (each pre-normed)."""

    def __init__(self, dim: int, heads: int, window: int, hidden: int, local_conv: int) -> None:
        super().__init__()
        self.window = window
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = BiasedAttention(dim, heads, dim // heads, dim // heads, window, window)
        self.local_conv = ConvNormAct(dim, dim, local_conv, groups=dim, act="none")
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        ws = self.window
        t = x.permute(0, 2, 3, 1)
        pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
        y = F.pad(t, (0, 0, 0, pad_r, 0, pad_b)) if pad_b or pad_r else t
        ph, pw = h + pad_b, w + pad_r
        nh, nw = ph // ws, pw // ws
        y = y.reshape(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
        y = self.attn(self.attn_norm(y))
        y = y.view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, ph, pw, c)[:, :h, :w]
        x = (skip(t) + y).permute(0, 3, 1, 2)
        x = self.local_conv(x)
        t = x.flatten(2).transpose(1, 2)
        t = skip(t) + self.mlp(self.mlp_norm(t), (h, w))
        return t.transpose(1, 2).reshape(b, c, h, w)


class ViTEmbed(nn.Module):
    """ViT's patch embedding with an optional class token and a learned position embedding.

    Output: a token sequence laid out as (B, C, tokens, 1).
    """

    def __init__(
        self, c_in: int, dim: int, patch: int, tokens: int, *, cls: bool, pos: bool
    ) -> None:
        super().__init__()
        self.proj = nn.Conv2d(c_in, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, dim, 1)) if cls else None
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, tokens)) if pos else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x).flatten(2)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=2)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        return x.unsqueeze(-1)


def tinyvit_merge(c_in: int, c_out: int, *, act: str) -> nn.Sequential:
    """TinyViT's patch merging: 1x1 conv, 3x3 stride-2 depthwise conv, 1x1 conv (BN each)."""
    return nn.Sequential(
        ConvNormAct(c_in, c_out, 1, act=act),
        ConvNormAct(c_out, c_out, 3, stride=2, groups=c_out, act=act),
        ConvNormAct(c_out, c_out, 1, act="none"),
    )
