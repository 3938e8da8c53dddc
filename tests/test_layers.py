"""archsearch's layers point one way: every import (deferred ones inside functions included;
``TYPE_CHECKING`` blocks aside) goes to the same layer or one below, and no modules import
each other in a cycle.

The layers, bottom to top (the README's layout section draws the same picture):

0. leaves: ``errors``, ``limits``, ``_version``
1. utilities: ``registry``, ``files``, ``expr`` (filter expressions), ``pareto`` (numpy)
2. model: ``blocks``, ``spec``, ``build``
3. domain: ``cost`` (counting, units, metrics, device descriptions, the latency predictor),
   ``spaces``, ``data``, ``weights``, ``zoo``, ``export`` (source, TorchScript, ONNX),
   ``plots`` (figures of results)
4. store: ``db``
5. services: ``profiling`` (measures and stores), ``evaluators``, ``solvers``
6. search: ``search`` (run configuration, gate, driver loop), ``benchmark``, ``supernet``
7. ``distributed``
8. ``cli``, ``service`` (the HTTP API and dashboard), ``testing`` (the conformance suites
   plugins run)

Within a layer an import may go sideways only where :data:`SIDEWAYS` allows it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "archsearch"

LAYERS: dict[str, int] = {
    **dict.fromkeys(("errors", "limits", "_version"), 0),
    **dict.fromkeys(("registry", "files", "expr", "pareto"), 1),
    **dict.fromkeys(("blocks", "spec", "build"), 2),
    **dict.fromkeys(("cost", "spaces", "data", "weights", "zoo", "export", "plots"), 3),
    "db": 4,
    **dict.fromkeys(("profiling", "evaluators", "solvers"), 5),
    **dict.fromkeys(("search", "benchmark", "supernet"), 6),
    "distributed": 7,
    **dict.fromkeys(("cli", "service", "__main__", "testing"), 8),
}
SIDEWAYS = {
    ("spec", "blocks"),
    ("build", "spec"),
    ("build", "blocks"),
    ("spaces", "cost"),
    ("zoo", "cost"),
    ("weights", "cost"),
    ("export", "cost"),
    ("plots", "cost"),
    ("evaluators", "profiling"),  # latency@device fills the table lazily
    ("evaluators", "solvers"),
    ("solvers", "evaluators"),
    ("benchmark", "search"),
    ("supernet", "search"),
    ("__main__", "cli"),
    ("cli", "service"),  # archsearch serve
}


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` for every archsearch import of the module, deferred ones
    included and ``if TYPE_CHECKING:`` blocks left out."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            # `from archsearch import zoo` imports the module archsearch.zoo
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target in known and target != name and target.startswith("archsearch"):
                yield target, node.lineno


def unit(module: str) -> str:
    """The layer unit of a module: its subpackage or top-level module (``archsearch.db.store``
    -> ``db``); the package root is the public API, above everything but the CLI."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "archsearch"


def test_every_module_has_a_layer() -> None:
    missing = sorted({unit(m) for m in modules()} - set(LAYERS) - {"archsearch"})
    assert not missing, f"give these a layer in LAYERS (and the README's layout): {missing}"


def test_imports_point_down_and_never_in_a_cycle() -> None:
    known = modules()
    graph = nx.DiGraph()
    upward: list[str] = []
    for name, path in sorted(known.items()):
        graph.add_node(name)
        for target, line in imports(name, path, known):
            graph.add_edge(name, target)
            a, b = unit(name), unit(target)
            if a == b or a == "archsearch":
                continue
            if b == "archsearch":
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {name} -> the root")
            elif LAYERS[b] > LAYERS[a] or (LAYERS[b] == LAYERS[a] and (a, b) not in SIDEWAYS):
                upward.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line}: {name} ({a}, layer "
                    f"{LAYERS[a]}) -> {target} ({b}, layer {LAYERS[b]})"
                )
    upward = list(dict.fromkeys(upward))
    assert not upward, "imports that point up or sideways:\n" + "\n".join(upward)
    cycles = [c for c in nx.simple_cycles(graph) if len(c) > 1]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles[:20])
