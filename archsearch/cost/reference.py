"""Counts measured on the built torch module: the ground truth the analytic model is tested on.

``measure(module, input_shape)`` runs one forward pass on the meta device (no memory, no
arithmetic) and returns a :class:`~archsearch.blocks.Cost` with

* ``params``: ``sum(p.numel() for p in module.parameters())``;
* ``macs``: ``FlopCounterMode``'s total divided by two, under the math SDPA kernel, because the
  fused CPU attention kernel reports zero FLOPs to the counter;
* ``activations``: the elements output by the operations FlopCounterMode counts
  (convolutions, matrix products), seen through a dispatch mode.

Imports torch; used by the tests, ``benchmarks/cost_model.py`` and users who want to verify.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from archsearch.blocks import Cost
from archsearch.spec import Architecture

_aten = torch.ops.aten
_COUNTED = {
    _aten.convolution.default,
    _aten._convolution.default,
    _aten.mm.default,
    _aten.addmm.default,
    _aten.bmm.default,
    _aten.baddbmm.default,
}


class _ActivationCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func in _COUNTED:
            self.total += sum(t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor))
        return out


def measure(
    module: nn.Module, input_shape: tuple[int, ...], context: tuple[int, ...] | None = None
) -> Cost:
    """Params, MACs and activations of ``module`` for one input of ``input_shape`` (no batch),
    and a second input of shape ``context`` for a block that reads another stream.

    The module is moved to the meta device (its weights are discarded) unless it is there.
    """
    params = sum(p.numel() for p in module.parameters())
    module = module.to("meta").eval()
    inputs = [torch.empty((1, *input_shape), device="meta")]
    if context is not None:
        inputs.append(torch.empty((1, *context), device="meta"))
    acts = _ActivationCounter()
    with (
        torch.no_grad(),
        sdpa_kernel(SDPBackend.MATH),
        FlopCounterMode(display=False) as flops,
        acts,
    ):
        module(*inputs)
    return Cost(params, flops.get_total_flops() // 2, acts.total)


def measure_arch(arch: Architecture) -> Cost:
    """:func:`measure` of ``archsearch.build(arch)``, built directly on the meta device."""
    from archsearch.build import build

    with torch.device("meta"):
        module = build(arch)
    return measure(module, arch.input_shape)
