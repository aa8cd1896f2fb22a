"""The shape of the source tree: no import circle, no upward import, no private model calls, bounded sizes.

The import graph counts every import, inside functions too. Each module sits
on a floor (``FLOORS``); a module may import from its own floor or below,
never above. Outside ``bayesclv.models`` nothing reaches for a private
attribute (``x._name``) of another object: downstream code uses the model
contract (``bayesclv.models.contract``).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "bayesclv"

#: Floors from the bottom: a module imports only from its own floor or below.
FLOORS = [
    ("bayesclv.errors", "bayesclv.arguments", "bayesclv.chunks", "bayesclv.progress", "bayesclv.display",
     "bayesclv.priors"),
    ("bayesclv.data", "bayesclv.formulas", "bayesclv.summaries", "bayesclv.metrics"),
    ("bayesclv.datasets", "bayesclv.simulate", "bayesclv.testing"),
    ("bayesclv.models",),
    ("bayesclv.clv", "bayesclv.evaluate", "bayesclv.checks", "bayesclv.drivers", "bayesclv.segment",
     "bayesclv.offers", "bayesclv.customer_table"),
    ("bayesclv.comparison", "bayesclv.scale", "bayesclv.plots"),
    ("bayesclv.report",),
    ("bayesclv",),  # the public API: the package's __init__ gathers everything
    ("bayesclv.cli", "bayesclv.cli_conventions", "bayesclv.__main__"),
]
MAX_LINES = 600
MAX_METHODS = 20
#: Private names of other libraries' objects that may be used (dask's metadata frame).
FOREIGN_PRIVATE = {"_meta"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Modules of the package that ``name`` imports anywhere in its file (function bodies included)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in MODULES and t != name}
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _floor(name: str) -> int:
    best, floor = -1, None
    for level, prefixes in enumerate(FLOORS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, floor = len(prefix), level
    assert floor is not None, f"{name} is on no floor: add it to FLOORS"
    return floor


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_imports_inside_functions_and_relative_ones():
    assert "bayesclv.display" in GRAPH["bayesclv.models.base"]  # imported inside _repr_html_
    assert "bayesclv.data.purchases" in GRAPH["bayesclv.data.dask"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle():
    assert _cycles(GRAPH) == []


def test_no_upward_import():
    upward = [(name, target) for name, targets in GRAPH.items() for target in targets
              if _floor(target) > _floor(name)]
    assert upward == []


def test_nothing_outside_models_calls_a_private_attribute():
    found = []
    for name, path in MODULES.items():
        if name.startswith("bayesclv.models"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and node.attr not in FOREIGN_PRIVATE
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                found.append(f"{name}:{node.lineno}: .{node.attr}")
    assert found == []


def test_no_module_is_too_long():
    lines = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: n for name, n in lines.items() if n > MAX_LINES} == {}


def test_model_classes_stay_small():
    sizes = {}
    for name, path in MODULES.items():
        if name.startswith("bayesclv.models"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef):
                    methods = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
                    sizes[f"{name}.{node.name}"] = len(methods)
    assert sizes and max(sizes.values()) <= MAX_METHODS, {k: v for k, v in sizes.items() if v > MAX_METHODS}


def test_result_files_named_in_the_source_exist():
    """A comment or docstring that cites a measurement names a file in the repository that holds it."""
    import re

    root = SRC.parent
    cited = {(name, match.rstrip(".,)"))
             for name, path in _modules().items()
             for match in re.findall(r"(?:validation|benchmarks)/results/[\w./-]+", path.read_text())}
    assert sorted((name, file) for name, file in cited if not (root / file).exists()) == []
