"""mtlgit's own module import graph, read from the source (nothing is imported): its cycles, and a layered map.

    python scripts/import_graph.py            # cycles among module-level imports, then among all imports
    python scripts/import_graph.py --edges    # every edge: "a -> b" (module level) or "a ~> b" (in a function)
    python scripts/import_graph.py --local    # the function-local imports, by module

A cycle among module-level imports can fail at import time; one closed only by a function-local import cannot,
but still ties the two modules together.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mtlgit"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def edges() -> dict[str, dict[str, bool]]:
    """module -> {imported module: True when imported at module level (outside functions)}."""
    modules = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    graph: dict[str, dict[str, bool]] = {name: {} for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        _visit(tree, name, package, modules, graph[name], top=True)
    return graph


def _visit(node: ast.AST, name: str, package: str, modules: dict[str, Path], out: dict[str, bool], top: bool) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            continue  # typing only: never imported at run time
        inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        targets: list[str] = []
        if isinstance(child, ast.Import):
            targets = [alias.name for alias in child.names]
        elif isinstance(child, ast.ImportFrom):
            base = child.module or ""
            if child.level:  # relative: counted from the importing package
                parent = package.split(".")[: len(package.split(".")) - child.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # `from mtlgit import store` imports the module mtlgit.store; `from mtlgit.store import Pool` too.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in child.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target in modules:
                out[target] = out.get(target, False) or top
        _visit(child, name, package, modules, out, inner)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def cycles(graph: dict[str, dict[str, bool]], top_only: bool) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, top in graph[v].items():
            if top_only and not top:
                continue
            if w not in index:
                strong(w)
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
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            strong(v)
    return sorted(found)


def pairs(graph: dict[str, dict[str, bool]]) -> list[tuple[str, str]]:
    """Two modules that import each other (in any way)."""
    return sorted((a, b) for a in graph for b in graph[a] if a < b and a in graph[b])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true")
    parser.add_argument("--local", action="store_true")
    args = parser.parse_args()
    graph = edges()
    if args.edges:
        for a in sorted(graph):
            for b, top in sorted(graph[a].items()):
                print(f"{a} {'->' if top else '~>'} {b}")
        return
    if args.local:
        for a in sorted(graph):
            local = sorted(b for b, top in graph[a].items() if not top)
            if local:
                print(f"{a}: {', '.join(local)}")
        return
    for label, top_only in (("module-level imports", True), ("all imports", False)):
        found = cycles(graph, top_only)
        print(f"cycles among {label}: {len(found)}")
        for component in found:
            print("  " + " <-> ".join(component))
    print("modules importing each other:")
    for a, b in pairs(graph):
        print(f"  {a} <-> {b}")


if __name__ == "__main__":
    main()
