"""NAS-Bench-201's cell, reduction block and head (Dong & Yang, "NAS-Bench-201: Extending the
Scope of Reproducible Neural Architecture Search", ICLR 2020; D-X-Y/NAS-Bench-201 and NATS-Bench).

* ``nb201_cell``: a DAG of 4 nodes; node ``i`` (1..3) sums one operation on each edge from
  every earlier node ``j``, and the cell outputs node 3. The six edges are the parameters
  ``e1_0, e2_0, e2_1, e3_0, e3_1, e3_2`` (``e<i>_<j>``: node j -> node i), each one of
  :data:`OPS`: ``none`` (zero), ``skip_connect`` (identity), ``nor_conv_1x1`` and
  ``nor_conv_3x3`` (ReLU, conv without bias, BatchNorm) and ``avg_pool_3x3`` (stride 1,
  padding 1, padding not counted). The cell keeps its width and map size.
* ``nb201_reduce``: the residual reduction block between stages (ResNet's basic block): ReLU,
  3x3 stride-2 conv, BN, ReLU, 3x3 conv, BN, plus a shortcut of a 2x2 average pool and a 1x1
  conv without bias.
* ``nb201_head``: BatchNorm, ReLU, global average pool, linear classifier.

With the stem ``conv_bn_act {kernel: 3, act: none}`` these build NAS-Bench-201's macro
skeleton exactly (the built-in ``nb201`` space). The cell graph is a networkx DiGraph
(:func:`cell_graph`), which also gives the entropy's main path (the live input -> output path
with the most convolutions).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from archsearch.blocks.base import (
    BlockFamily,
    Cost,
    LayerCall,
    Param,
    Role,
    Shape,
    conv_cost,
    conv_out,
    keeps_width,
    linear_cost,
)

if TYPE_CHECKING:
    import networkx as nx

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""NAS-Bench-201's operations, in its order."""
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""The cell's edges ``(to, from)`` in NAS-Bench-201's string order."""
EDGE_PARAMS: tuple[str, ...] = tuple(f"e{i}_{j}" for i, j in EDGES)
CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


def cell_graph(ops: Mapping[str, Any]) -> nx.DiGraph:
    """The cell as a DiGraph on nodes 0..3 with an ``op`` on each edge (``none`` included)."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(range(4))
    for (i, j), name in zip(EDGES, EDGE_PARAMS, strict=True):
        g.add_edge(j, i, op=str(ops[name]))
    return g


def live_graph(ops: Mapping[str, Any]) -> nx.DiGraph:
    """The edges that can carry the input to the output: ``none`` edges dropped, and every
    edge not on a path from node 0 to node 3 (a dead end or an unreachable node) removed."""
    import networkx as nx

    g = cell_graph(ops)
    g.remove_edges_from([(u, v) for u, v, op in g.edges(data="op") if op == "none"])
    if not nx.has_path(g, 0, 3):
        return nx.DiGraph()
    keep = (nx.descendants(g, 0) | {0}) & (nx.ancestors(g, 3) | {3})
    return nx.DiGraph(g.subgraph(keep))


class NB201Cell(BlockFamily):
    name = "nb201_cell"
    width_keeping = True
    roles: ClassVar[frozenset[Role]] = frozenset({"block"})
    reference = "NAS-Bench-201 (Dong & Yang, ICLR 2020), D-X-Y/NAS-Bench-201 InferCell"
    params = tuple(
        Param(n, str, "none", choices=OPS, doc=f"operation on the edge node {j} -> node {i}")
        for (i, j), n in zip(EDGES, EDGE_PARAMS, strict=True)
    )

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        return keeps_width(shape, out, self.name) or super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        c, h, w = shape
        total = Cost()
        for n in EDGE_PARAMS:
            k = CONV_KERNEL.get(str(p[n]))
            if k is not None:
                total += conv_cost(c, c, k, h, w) + Cost(2 * c)
        return total

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        import networkx as nx

        g = live_graph(p)
        if g.number_of_edges() == 0:
            return ()
        for u, v, op in g.edges(data="op"):
            g[u][v]["convs"] = 1 if op in CONV_KERNEL else 0
        path = nx.dag_longest_path(g, weight="convs", default_weight=0)
        ops = [g[u][v]["op"] for u, v in itertools.pairwise(path)]
        return tuple(float(shape[0] * CONV_KERNEL[op] ** 2) for op in ops if op in CONV_KERNEL)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import NB201CellModule

        return LayerCall(NB201CellModule, (out, [str(p[n]) for n in EDGE_PARAMS], EDGES))


class NB201Reduce(BlockFamily):
    name = "nb201_reduce"
    roles: ClassVar[frozenset[Role]] = frozenset({"downsample"})
    reference = "NAS-Bench-201 (Dong & Yang, ICLR 2020), D-X-Y/NAS-Bench-201 ResNetBasicblock"
    params = ()

    def check(self, shape: Shape, out: int, p: Mapping[str, Any]) -> str | None:
        if shape[1] % 2 or shape[2] % 2:
            return (
                f"nb201_reduce halves the map with a stride-2 conv and a 2x2 pool, which agree "
                f"only on even sizes; the input is {shape[1]}x{shape[2]}"
            )
        return super().check(shape, out, p)

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return out, conv_out(shape[1], 3, 2, 1), conv_out(shape[2], 3, 2, 1)

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        _, h, w = self.out_shape(shape, out, p)
        return (
            conv_cost(shape[0], out, 3, h, w)
            + conv_cost(out, out, 3, h, w)
            + conv_cost(shape[0], out, 1, h, w)
            + Cost(4 * out)
        )

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return (shape[0] * 9, out * 9)

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import nb201_reduce

        return LayerCall(nb201_reduce, (shape[0], out))


class NB201Head(BlockFamily):
    name = "nb201_head"
    roles: ClassVar[frozenset[Role]] = frozenset({"head"})
    reference = "NAS-Bench-201 (Dong & Yang, ICLR 2020), TinyNetwork lastact + classifier"
    params = ()

    def out_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return out, 1, 1

    def feature_shape(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Shape:
        return shape

    def cost(self, shape: Shape, out: int, p: Mapping[str, Any]) -> Cost:
        return Cost(2 * shape[0]) + linear_cost(shape[0], out, 1)

    def fan_ins(self, shape: Shape, out: int, p: Mapping[str, Any]) -> tuple[float, ...]:
        return ()

    def layer(self, shape: Shape, out: int, p: Mapping[str, Any]) -> LayerCall:
        from archsearch.blocks.layers import nb201_head

        return LayerCall(nb201_head, (shape[0], out))
