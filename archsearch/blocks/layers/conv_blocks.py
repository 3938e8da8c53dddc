"""The modules of :mod:`archsearch.blocks.conv_blocks`: ConvNeXt, MBConv, bottleneck."""

from __future__ import annotations

from torch import Tensor, nn

from archsearch.blocks.layers.common import (
    ConvNormAct,
    LayerScale,
    Residual,
    SqueezeExcite,
    make_act,
    skip,
)


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


def mbconv(
    c_in: int,
    c_out: int,
    *,
    hidden: int,
    kernel: int,
    stride: int,
    se: int,
    act: str,
    final_act: bool,
    expand_conv: bool = True,
    se_act: str = "same",
    se_gate: str = "sigmoid",
    norm: str = "bn",
    conv_bias: bool = False,
) -> nn.Module:
    """Inverted residual: 1x1 expansion to ``hidden`` (unless ``expand_conv`` is false: then
    ``hidden == c_in`` and an identity stands in), kxk depthwise, squeeze-excite (``se``
    channels, 0 for none; ``se_act`` "same" is ``act``), 1x1 projection; an identity residual
    when the shape is kept, and ``final_act`` after the sum (TinyViT). Every conv is followed
    by ``norm`` (bn, ln, gn or none) and has a bias if ``conv_bias``."""
    excite: nn.Module = nn.Identity()
    if se:
        excite = SqueezeExcite(hidden, se, act if se_act == "same" else se_act, se_gate)
    body = nn.Sequential(
        ConvNormAct(c_in, hidden, 1, act=act, norm=norm, bias=conv_bias)
        if expand_conv
        else nn.Identity(),
        ConvNormAct(
            hidden,
            hidden,
            kernel,
            stride=stride,
            groups=hidden,
            act=act,
            norm=norm,
            bias=conv_bias,
        ),
        excite,
        ConvNormAct(hidden, c_out, 1, act="none", norm=norm, bias=conv_bias),
    )
    if stride == 1 and c_in == c_out:
        return Residual(body, act=act if final_act else "none")
    if final_act:
        return nn.Sequential(body, make_act(act))
    return body


def bottleneck(
    c_in: int,
    c_out: int,
    *,
    hidden: int,
    kernel: int,
    stride: int,
    shortcut: str,
    groups: int = 1,
    se: int = 0,
    norm: str = "bn",
    conv_bias: bool = False,
) -> Residual:
    """ResNet's 1x1-kxk-1x1 bottleneck, stride in the (``groups``-grouped) kxk conv, optional
    squeeze-excite (``se`` channels) on the output, ReLU after the sum; the shortcut is
    ``identity``, ``conv`` (a strided 1x1 projection) or ``avgpool`` (a 2x2 average pool when
    strided, then a 1x1 projection when the width changes). Every conv, the projection's too,
    is followed by ``norm`` (bn, ln, gn or none) and has a bias if ``conv_bias``."""
    body = nn.Sequential(
        ConvNormAct(c_in, hidden, 1, norm=norm, bias=conv_bias),
        ConvNormAct(
            hidden, hidden, kernel, stride=stride, groups=groups, norm=norm, bias=conv_bias
        ),
        ConvNormAct(hidden, c_out, 1, act="none", norm=norm, bias=conv_bias),
    )
    if se:
        body.append(SqueezeExcite(c_out, se, "relu"))
    link: nn.Module = nn.Identity()
    if shortcut == "avgpool":
        parts: list[nn.Module] = []
        if stride == 2:
            parts.append(nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False))
        if c_in != c_out:
            parts.append(ConvNormAct(c_in, c_out, 1, act="none", norm=norm, bias=conv_bias))
        link = nn.Sequential(*parts)
    elif shortcut == "conv":
        link = ConvNormAct(c_in, c_out, 1, stride=stride, act="none", norm=norm, bias=conv_bias)
    return Residual(body, link, act="relu")
