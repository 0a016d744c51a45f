"""No import cycles: the import graph of ``spart`` (module-level and function-level imports; ``TYPE_CHECKING``
blocks excluded) is acyclic, and every training module imports in a fresh interpreter, in either order."""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import spart
import spart.training

SRC = Path(spart.__file__).resolve().parent


def _module_files() -> dict[str, Path]:
    files = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str, known: dict[str, Path]) -> set[str]:
    """The spart modules ``tree`` imports (the deepest existing module of every imported name)."""

    def existing(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    found: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(filter(None, (existing(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                found.update(filter(None, [existing(f"{base}.{alias.name}")]))
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph() -> dict[str, set[str]]:
    known = _module_files()
    graph = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = _imports(ast.parse(path.read_text(encoding="utf-8")), package, known) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                return path[path.index(child) :] + [child]
            if child not in state and (cycle := visit(child)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_graph_sees_function_level_imports():
    graph = import_graph()
    # registry imports its pieces by name, run_training imports distributed inside the function
    assert "spart.training.distributed" in graph["spart.training.registry"]
    assert "spart.training.trainer" not in graph["spart.training.registry"]  # only under TYPE_CHECKING
    assert "spart.data.passages" in graph["spart.training.supervised_pairs"]


def test_spart_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def training_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(spart.training.__path__, "spart.training."))


def test_every_training_module_imports_in_a_fresh_interpreter_in_either_order():
    modules = training_modules()
    assert {"spart.training.registry", "spart.training.spans.kernel", "spart.training.art"} <= set(modules)
    for order in (modules, modules[::-1]):
        script = (
            f"import importlib, json\nfor name in json.loads({json.dumps(json.dumps(order))}):\n"
            "    importlib.import_module(name)\n"
        )
        path = os.pathsep.join(filter(None, [str(SRC.parent), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
