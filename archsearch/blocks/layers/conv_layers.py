"""Torch modules of the single-convolution families (stems, patch embeddings, downsamples)."""

from __future__ import annotations

from torch import nn

from archsearch.blocks.layers.common import ConvNormAct, make_act, make_norm2d


def conv_norm(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int,
    padding: int,
    *,
    bias: bool,
    norm: str,
    act: str = "none",
    norm_first: bool = False,
    norm_bias: bool = True,
) -> nn.Sequential:
    """A convolution with its norm after it and an activation (or, ``norm_first``, the norm
    before it and no activation): conv_bn_act, patchify, overlap_patch, conv_down,
    patch_merge."""
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=bias)
    if norm_first:
        return nn.Sequential(make_norm2d(norm, c_in, bias=norm_bias), conv)
    return nn.Sequential(conv, make_norm2d(norm, c_out, bias=norm_bias), make_act(act))


def conv_stem(c_in: int, c_out: int, *, bias: bool, act: str, final_act: bool) -> nn.Sequential:
    """Two 3x3 stride-2 conv-BN(-act) layers, the first to half the width."""
    return nn.Sequential(
        ConvNormAct(c_in, c_out // 2, 3, stride=2, bias=bias, act=act),
        ConvNormAct(c_out // 2, c_out, 3, stride=2, bias=bias, act=act if final_act else "none"),
    )


def resnet_stem(c_in: int, c_out: int, *, kernel: int, pool: bool, act: str) -> nn.Sequential:
    """A kxk stride-2 conv, BN and activation, then (``pool``) a 3x3 stride-2 max pool."""
    layers: list[nn.Module] = [ConvNormAct(c_in, c_out, kernel, stride=2, act=act)]
    if pool:
        layers.append(nn.MaxPool2d(3, 2, 1))
    return nn.Sequential(*layers)
