"""Filter expressions over metrics: ``"macs <= 600M and rho < 0.5"``.

Parsed with Python's ``ast`` into a small whitelisted tree (comparisons, ``and``/``or``/
``not``, numbers with an optional k/M/G/T suffix, metric names, unary minus), then either
evaluated on a ``{metric: value}`` mapping (run-time constraints) or compiled into a
SQLAlchemy expression over bound columns (``pareto --where``). User text never reaches SQL.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archsearch.errors import UserError
from archsearch.limits import MAX_EXPR_CHARS, MAX_EXPR_TERMS

if TYPE_CHECKING:  # numpy is imported where arrays are evaluated (the CLI starts without it)
    import numpy as np
    from numpy.typing import NDArray

_SUFFIX = re.compile(r"(?<![\w.])(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?\s*([kKMGT])\b")
_SCALE = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_AT_NAME = re.compile(r"\b([A-Za-z_]\w*)@([A-Za-z_]\w*)")
_AT = "__at__"
_CMP: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


@dataclass(frozen=True)
class Expr:
    """A validated filter expression; see the module docstring."""

    text: str
    tree: ast.expr

    @property
    def names(self) -> set[str]:
        return {n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name)}

    def check_names(self, known: Iterable[str], what: str) -> None:
        """Raises UserError naming any metric of the expression not in ``known``."""
        allowed = set(known)
        for name in sorted(self.names - allowed):
            raise UserError(
                f"{what}: unknown metric {name!r} in {self.text!r}; choose from "
                f"{', '.join(sorted(allowed))}"
            )

    def upper_bounds(self) -> dict[str, float] | None:
        """``{metric: bound}`` when the expression is a conjunction of ``metric <= number``
        (or ``<``, or ``number >= metric``) comparisons, else None.

        Solvers that model metrics (DeepMAD's program) read constraints through this.
        """
        parts = (
            self.tree.values
            if isinstance(self.tree, ast.BoolOp) and isinstance(self.tree.op, ast.And)
            else [self.tree]
        )
        out: dict[str, float] = {}
        for part in parts:
            if not (isinstance(part, ast.Compare) and len(part.ops) == 1):
                return None
            left, op, right = part.left, part.ops[0], part.comparators[0]
            if isinstance(op, ast.Gt | ast.GtE):
                left, right = right, left
            elif not isinstance(op, ast.Lt | ast.LtE):
                return None
            if not isinstance(left, ast.Name):
                return None
            value = _number(right)
            if value is None:
                return None
            out[left.id] = min(value, out.get(left.id, math.inf))
        return out

    def evaluate(self, values: Mapping[str, float]) -> bool:
        """The expression's truth on ``values``; a comparison with NaN is false."""
        return bool(_eval(self.tree, values))

    def evaluate_columns(
        self, columns: Mapping[str, NDArray[np.float64]], n: int
    ) -> NDArray[np.bool_]:
        """The rows (of ``n``) where the expression holds, over arrays of length ``n``, with
        the logic of the database's filter (:meth:`to_sql`): a comparison with NaN (NULL) is
        unknown, so is ``not`` of an unknown; ``and``/``or`` follow three-valued logic; a row
        is kept when the whole is true."""
        true, _ = _eval_columns(self.tree, columns, n)
        return true

    def to_sql(self, columns: Mapping[str, Any]) -> Any:
        """A SQLAlchemy boolean expression, each name replaced by ``columns[name]``."""
        return _sql(self.tree, columns)


def parse_expr(text: str, *, what: str = "--where") -> Expr:
    """Parses and validates ``text``.

    Raises:
        UserError: a syntax error or a construct outside comparisons of metrics and numbers.
    """
    if len(text) > MAX_EXPR_CHARS:
        raise UserError(
            f"{what}: the expression has {len(text):,} characters; at most {MAX_EXPR_CHARS:,}"
        )
    shown = text if len(text) <= 80 else text[:77] + "..."
    # float() reads any exponent (1e999 is inf) without computing a huge integer first
    source = _SUFFIX.sub(
        lambda m: _literal(float(f"{m[1]}e{m[2] or 0}") * _SCALE[m[3]]), text.strip()
    )
    source = re.sub(r"(?<![<>=!])=(?!=)", "==", source)
    # Metric names may name a device ("latency@cpu"); Python would read "@" as an operator.
    source = _AT_NAME.sub(lambda m: f"{m[1]}{_AT}{m[2]}", source)
    try:
        tree = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError):  # ValueError: a NUL character
        raise UserError(
            f"{what}: cannot parse {shown!r}; write comparisons joined by and/or, e.g. "
            '"macs <= 600M and rho < 0.5"'
        ) from None
    except (RecursionError, MemoryError):
        raise UserError(f"{what}: {shown!r} nests too deeply") from None
    _validate(tree, shown, what)
    terms = sum(len(n.ops) for n in ast.walk(tree) if isinstance(n, ast.Compare))
    if terms > MAX_EXPR_TERMS or _depth(tree) > _MAX_DEPTH:
        raise UserError(
            f"{what}: {shown!r} has {terms} comparisons nested {_depth(tree)} deep; at most "
            f"{MAX_EXPR_TERMS} comparisons nested {_MAX_DEPTH} deep"
        )
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            node.id = node.id.replace(_AT, "@")
        elif isinstance(node, ast.Constant) and isinstance(node.value, int):
            # numbers compare as floats: an integer beyond 64 bits cannot be bound to SQL
            node.value = float(node.value)
    return Expr(text, tree)


_MAX_DEPTH = 32
"""Nesting of and/or/not and parentheses (SQLite refuses expressions nested 1000 deep)."""


def _literal(value: float) -> str:
    """A float as Python source (``inf`` is not a literal: ``1e999`` is)."""
    return "1e999" if value == math.inf else repr(value)


def _depth(node: ast.AST) -> int:
    """Nesting depth of boolean operators and negations (iterative: any depth is measured)."""
    deepest = 0
    stack = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        depth += isinstance(current, ast.BoolOp | ast.UnaryOp)
        deepest = max(deepest, depth)
        stack.extend((c, depth) for c in ast.iter_child_nodes(current))
    return deepest


def _number(node: ast.expr) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    return None


def _validate(node: ast.AST, text: str, what: str) -> None:
    ok = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.Compare,
        ast.Name,
        ast.Load,
        ast.Constant,
        *_CMP,
    )
    for sub in ast.walk(node):
        if not isinstance(sub, ok):
            raise UserError(
                f"{what}: {text!r} uses {type(sub).__name__}, which is not allowed; use "
                "metric names, numbers, comparisons, and/or/not"
            )
        if isinstance(sub, ast.Constant) and (
            isinstance(sub.value, bool) or not isinstance(sub.value, int | float)
        ):
            raise UserError(f"{what}: {text!r}: {sub.value!r} is not a number")
        if (
            isinstance(sub, ast.UnaryOp)
            and isinstance(sub.op, ast.USub)
            and not isinstance(sub.operand, ast.Constant)
        ):
            raise UserError(f"{what}: {text!r}: minus applies to numbers only")
    if not isinstance(node, ast.Compare | ast.BoolOp) and not (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
    ):
        raise UserError(f"{what}: {text!r} is not a condition; compare a metric, e.g. macs < 1G")


def _eval(node: ast.expr, values: Mapping[str, float]) -> Any:
    if isinstance(node, ast.BoolOp):
        parts = (_eval(v, values) for v in node.values)
        return all(parts) if isinstance(node.op, ast.And) else any(parts)
    if isinstance(node, ast.UnaryOp):
        inner = _eval(node.operand, values)
        return (not inner) if isinstance(node.op, ast.Not) else -inner
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, values)
            if any(isinstance(x, float) and math.isnan(x) for x in (left, right)):
                return False
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Name):
        return float(values[node.id])
    assert isinstance(node, ast.Constant)
    return node.value


def _value_columns(node: ast.expr, columns: Mapping[str, NDArray[np.float64]]) -> Any:
    import numpy as np

    if isinstance(node, ast.Name):
        return np.asarray(columns[node.id], dtype=np.float64)
    value = _number(node)
    assert value is not None  # _validate allows minus on numbers only
    return value


def _eval_columns(
    node: ast.expr, columns: Mapping[str, NDArray[np.float64]], n: int
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(definitely true, definitely false) of each row; neither is SQL's unknown."""
    import numpy as np

    if isinstance(node, ast.BoolOp):
        parts = [_eval_columns(v, columns, n) for v in node.values]
        trues, falses = [p[0] for p in parts], [p[1] for p in parts]
        if isinstance(node.op, ast.And):
            return np.logical_and.reduce(trues), np.logical_or.reduce(falses)
        return np.logical_or.reduce(trues), np.logical_and.reduce(falses)
    if isinstance(node, ast.UnaryOp):  # ``not``: the only unary operator on a condition
        true, false = _eval_columns(node.operand, columns, n)
        return false, true
    assert isinstance(node, ast.Compare)
    true, false = np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    left = _value_columns(node.left, columns)
    for op, comp in zip(node.ops, node.comparators, strict=True):
        right = _value_columns(comp, columns)
        known = ~(np.isnan(left) | np.isnan(right))
        with np.errstate(invalid="ignore"):
            holds = np.broadcast_to(_CMP[type(op)](left, right), (n,))
        true &= holds & known
        false |= ~holds & known
        left = right
    return true, false


def _sql(node: ast.expr, columns: Mapping[str, Any]) -> Any:
    from sqlalchemy import and_, not_, or_

    if isinstance(node, ast.BoolOp):
        parts = [_sql(v, columns) for v in node.values]
        return and_(*parts) if isinstance(node.op, ast.And) else or_(*parts)
    if isinstance(node, ast.UnaryOp):
        inner = _sql(node.operand, columns)
        return not_(inner) if isinstance(node.op, ast.Not) else -inner
    if isinstance(node, ast.Compare):
        terms = []
        left = _sql(node.left, columns)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _sql(comp, columns)
            terms.append(_CMP[type(op)](left, right))
            left = right
        return and_(*terms)
    if isinstance(node, ast.Name):
        return columns[node.id]
    assert isinstance(node, ast.Constant)
    return node.value
