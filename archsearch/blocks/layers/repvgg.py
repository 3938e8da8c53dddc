"""The modules of :mod:`archsearch.blocks.repvgg`: RepVGG's block in either form."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from archsearch.blocks.layers.common import ConvNormAct, make_act, skip


def _fold(conv: nn.Module, bn: nn.Module) -> tuple[Tensor, Tensor]:
    """A bias-free conv followed by BN (running statistics) as one conv's weight and bias."""
    assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    assert bn.running_var is not None and bn.running_mean is not None
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return conv.weight * scale.view(-1, 1, 1, 1), bn.bias - bn.running_mean * scale


class RepVGGBlock(nn.Module):
    """``act(BN(conv_k(x)) + BN(conv_1(x)) [+ BN(x)])`` (training form) or ``act(conv_k(x))``
    with a bias (deploy form); :meth:`fused` turns the first into the second."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        *,
        stride: int,
        deploy: bool,
        identity: bool,
        act: str,
    ) -> None:
        super().__init__()
        self.c_in, self.c_out, self.kernel, self.stride = c_in, c_out, kernel, stride
        self.act = make_act(act)
        self.act_name = act
        self.reparam: nn.Conv2d | None = None
        self.dense: ConvNormAct | None = None
        self.pointwise: ConvNormAct | None = None
        self.identity: nn.BatchNorm2d | None = None
        if deploy:
            self.reparam = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=True)
            return
        self.dense = ConvNormAct(c_in, c_out, kernel, stride=stride, act="none")
        self.pointwise = ConvNormAct(c_in, c_out, 1, stride=stride, padding=0, act="none")
        self.identity = nn.BatchNorm2d(c_in) if identity else None

    def forward(self, x: Tensor) -> Tensor:
        if self.reparam is not None:
            return self.act(self.reparam(x))
        assert self.dense is not None and self.pointwise is not None
        y = self.dense(x) + self.pointwise(x)
        if self.identity is not None:
            y = y + skip(self.identity(x))
        return self.act(y)

    @torch.no_grad()
    def fused(self) -> RepVGGBlock:
        """The deploy form computing what this block computes in eval mode (BN statistics
        folded in): the 1x1 kernel and the identity are padded to ``k x k`` and summed."""
        if self.reparam is not None:
            return self
        assert self.dense is not None and self.pointwise is not None
        k, pad = self.kernel, self.kernel // 2
        weight, bias = _fold(self.dense[0], self.dense[1])
        w1, b1 = _fold(self.pointwise[0], self.pointwise[1])
        weight = weight.clone()
        weight[:, :, pad, pad] += w1[:, :, 0, 0]
        bias = bias + b1
        if self.identity is not None:
            eye = torch.zeros_like(weight)
            eye[torch.arange(self.c_in), torch.arange(self.c_in), pad, pad] = 1.0
            conv = nn.Conv2d(self.c_in, self.c_out, k, bias=False)
            conv.weight.copy_(eye)
            wi, bi = _fold(conv, self.identity)
            weight, bias = weight + wi, bias + bi
        out = RepVGGBlock(
            self.c_in,
            self.c_out,
            k,
            stride=self.stride,
            deploy=True,
            identity=False,
            act=self.act_name,
        )
        assert out.reparam is not None and out.reparam.bias is not None
        out.reparam.weight.copy_(weight)
        out.reparam.bias.copy_(bias)
        return out


def reparameterize(net: nn.Module) -> nn.Module:
    """Folds every training-form :class:`RepVGGBlock` in ``net`` into its deploy form, in place
    (call in eval mode, after training); returns ``net``. Its state dict then loads into the
    same spec built with ``form: deploy``."""
    for name, child in list(net.named_children()):
        if isinstance(child, RepVGGBlock):
            setattr(net, name, child.fused())
        else:
            reparameterize(child)
    return net
