"""The modules of :mod:`archsearch.blocks.cells` (NAS-Bench-201)."""

from __future__ import annotations

from torch import Tensor, nn

from archsearch.blocks.layers.common import Residual


class _Zero(nn.Module):
    """NAS-Bench-201's ``none`` operation: a zero map of the input's shape."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0)


def _nb201_op(name: str, c: int) -> nn.Module:
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    k = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}[name]
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, 1, k // 2, bias=False), nn.BatchNorm2d(c))


class NB201CellModule(nn.Module):
    """NAS-Bench-201's cell: node ``i`` sums ``op(node j)`` over its incoming edges; the cell
    returns node 3. ``edges`` lists ``(i, j)`` pairs, ``ops`` their operations."""

    def __init__(self, c: int, ops: list[str], edges: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        self.edges = edges
        self.ops = nn.ModuleList(_nb201_op(op, c) for op in ops)

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        for i in range(1, 4):
            terms = [
                op(nodes[j]) for (to, j), op in zip(self.edges, self.ops, strict=True) if to == i
            ]
            node = terms[0]
            for t in terms[1:]:
                node = node + t
            nodes.append(node)
        return nodes[3]


def nb201_reduce(c_in: int, c_out: int) -> Residual:
    """NAS-Bench-201's residual reduction: ReLU-conv3x3(stride 2)-BN-ReLU-conv3x3-BN, with a
    2x2 average pool and 1x1 conv shortcut."""
    body = nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
        nn.BatchNorm2d(c_out),
    )
    shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))
    return Residual(body, shortcut)


def nb201_head(c_in: int, classes: int) -> nn.Sequential:
    """NAS-Bench-201's head: BN, ReLU, global average pool, linear classifier."""
    return nn.Sequential(
        nn.BatchNorm2d(c_in),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c_in, classes),
    )
