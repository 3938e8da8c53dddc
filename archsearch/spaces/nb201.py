"""NAS-Bench-201's string notation and cell equivalence for the ``nb201`` space.

NAS-Bench-201 writes a cell as ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: one group per node
1..3, listing the operation on the edge from each earlier node (``op~j``). :func:`arch_str`
reads it off an architecture whose blocks are ``nb201_cell`` (all cells alike), and
:func:`from_arch_str` builds the member of a space that has that cell.

Identity. Every one of the 15,625 cells is its own architecture, with its own digest, even when
two cells compute the same function: NAS-Bench-201 trained each cell separately, and its tables
(accuracies, latencies) give each its own row, so a table is looked up one to one.
:func:`equivalence_key` says which cells are equivalent, for users who want to merge them:
two cells are equivalent when their *live graphs* (``none`` edges dropped, then every edge not
on a path from the input node to the output node) are the same labelled DAG up to swapping the
two intermediate nodes. Under this purely structural rule the 15,625 cells form 8,765 classes
(tested). NAS-Bench-201 reports 6,466 unique cells under a looser, algebraic rule that also
reads ``skip_connect`` as the identity and merges equal sums; archsearch does not reproduce it.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from archsearch.blocks.cells import EDGE_PARAMS, EDGES, OPS, live_graph
from archsearch.errors import NotInSpaceError, UserError
from archsearch.spec import Architecture

if TYPE_CHECKING:
    from archsearch.spaces.space import Space

CELL = "nb201_cell"


def parse_arch_str(text: str) -> dict[str, str]:
    """``|nor_conv_3x3~0|+|...`` -> ``{"e1_0": "nor_conv_3x3", ...}``.

    Raises:
        UserError: the string is not a NAS-Bench-201 cell; the message says what is wrong.
    """
    s = text.strip()
    groups = s.split("+")
    if len(groups) != 3:
        raise UserError(
            f"arch_str {text!r}: expected 3 node groups joined by '+', e.g. "
            "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
        )
    out: dict[str, str] = {}
    for i, group in enumerate(groups, start=1):
        items = [x for x in group.split("|") if x]
        if len(items) != i or not group.startswith("|") or not group.endswith("|"):
            raise UserError(
                f"arch_str {text!r}: node {i}'s group {group!r} must list {i} edge(s) as "
                f"|op~j|, for j = 0..{i - 1}"
            )
        for j, item in enumerate(items):
            op, sep, src = item.partition("~")
            if not sep or src != str(j):
                raise UserError(
                    f"arch_str {text!r}: {item!r} must read op~{j} (the edge from node {j})"
                )
            if op not in OPS:
                raise UserError(
                    f"arch_str {text!r}: unknown operation {op!r}; choose from {', '.join(OPS)}"
                )
            out[f"e{i}_{j}"] = op
    return out


def format_arch_str(ops: Mapping[str, Any]) -> str:
    """The NAS-Bench-201 string of a cell given as ``{edge param: op}``."""
    groups = []
    for i in range(1, 4):
        groups.append("|" + "|".join(f"{ops[f'e{i}_{j}']}~{j}" for j in range(i)) + "|")
    return "+".join(groups)


def cell_ops(arch: Architecture) -> dict[str, str]:
    """The edge operations of ``arch``'s cell.

    Raises:
        NotInSpaceError: ``arch`` has no ``nb201_cell`` blocks, or cells that differ.
    """
    cells = [b for st in arch.stages for b in st.blocks if b.type == CELL]
    if not cells:
        raise NotInSpaceError(f"architecture {arch.digest[:12]} has no {CELL} blocks")
    first = cells[0].params
    if any(c.params != first for c in cells[1:]):
        raise NotInSpaceError(
            f"architecture {arch.digest[:12]} has different cells; NAS-Bench-201's notation "
            "describes one cell repeated"
        )
    return {n: str(first[n]) for n in EDGE_PARAMS}


def arch_str(arch: Architecture) -> str:
    """NAS-Bench-201's string of ``arch``'s cell (see :func:`cell_ops` for the errors)."""
    return format_arch_str(cell_ops(arch))


def from_arch_str(text: str, space: Space | None = None) -> Architecture:
    """The member of ``space`` (default: the built-in ``nb201``) whose cell is ``text``.

    Raises:
        UserError: ``text`` is not a cell string, or the space has no member with that cell.
    """
    from archsearch.spaces import load_space

    sp = load_space("nb201") if space is None else space
    ops = parse_arch_str(text)
    template = _template(sp)
    assignment = dict(template)
    for label in template:
        head, _, edge = label.rpartition(".")
        if head.endswith(f".{CELL}") or head == CELL:
            assignment[label] = ops[edge]
    try:
        return sp.decode(assignment)
    except (NotInSpaceError, UserError) as e:
        raise UserError(f"arch_str {text!r} is not in space {sp.name!r}: {e}") from None


_TEMPLATES: weakref.WeakKeyDictionary[Space, dict[str, Any]] = weakref.WeakKeyDictionary()


def _template(space: Space) -> dict[str, Any]:
    """An assignment of one member of ``space`` whose blocks include cells (cached)."""
    if space not in _TEMPLATES:
        arch = space.sample(seed=0)
        try:
            cell_ops(arch)
        except NotInSpaceError:
            raise UserError(
                f"space {space.name!r} has no {CELL} blocks; NAS-Bench-201 strings describe the "
                "nb201 space's cells"
            ) from None
        _TEMPLATES[space] = space.encode(arch)
    return _TEMPLATES[space]


def equivalence_key(cell: str | Architecture | Mapping[str, Any]) -> str:
    """A key equal for equivalent cells (see the module docstring): the live graph's edges,
    with the two intermediate nodes ordered so that the smaller description comes first."""
    if isinstance(cell, str):
        ops: Mapping[str, Any] = parse_arch_str(cell)
    elif isinstance(cell, Architecture):
        ops = cell_ops(cell)
    else:
        ops = cell
    g = live_graph(ops)
    forms = []
    for relabel in ({1: 1, 2: 2}, {1: 2, 2: 1}):
        m = {0: 0, 3: 3, **relabel}
        forms.append(sorted(f"{m[u]}>{m[v]}:{op}" for u, v, op in g.edges(data="op")))
    return ",".join(min(forms)) or "empty"


__all__ = [
    "EDGES",
    "OPS",
    "arch_str",
    "cell_ops",
    "equivalence_key",
    "format_arch_str",
    "from_arch_str",
    "parse_arch_str",
]
