"""mtlgit's own module import graph, read from the source (nothing is imported): its cycles, and a layered map.

    python scripts/import_graph.py            # cycles among module-level imports, then among all imports
    python scripts/import_graph.py --edges    # every edge: "a -> b" (module level) or "a ~> b" (in a function)
    python scripts/import_graph.py --local    # each function-local import of an mtlgit module, and why it is local

A cycle among module-level imports can fail at import time; one closed only by a function-local import cannot,
but still ties the two modules together.

An import of an mtlgit module stays inside a function only for one of these reasons (``--local`` names it):

- **cycle**: the imported module imports this one at module level, directly or not;
- **recall path**: ``mtlgit recall`` can load this module, and the plainest recall (hits citing no code, no
  pool, a settled index, any output) does not load the imported one, so no recall pays for what it does not use;
- **numpy**: this module loads without numpy and the imported one brings it (with the index), which
  commands such as ``mtlgit lint`` (the pre-commit hook), ``pool list`` and ``feedback`` do without;
- **subprocess**: likewise for ``subprocess`` (with ``mtlgit.git``, about a tenth of a numpy import): finding
  the repository and reading memories, as ``lint`` does, run no git;
- **command**: in ``mtlgit/cli/``, whose module click loads whenever it looks a command up (its help too), a command
  loads its library only when it runs;
- **lazy package names**: ``mtlgit/__init__.py`` names ``Pool`` and ``Memory`` without importing them.

Any other is "movable": it belongs at the top of its module.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mtlgit"
NUMPY = "numpy"  # the third-party module the graph follows: its import is most of a command's start-up
SUBPROCESS = "subprocess"  # the standard module the graph follows: only commands that run git need it
HEAVY = (NUMPY, SUBPROCESS)

# The mtlgit modules `mtlgit recall QUERY` loads with hits that cite no code, no pool and a settled index, in every
# output (text, --json, --paths), and those some recall loads (hits citing code; a changed memory; a synced pool;
# tests/test_import_graph.py checks both against real recalls).
RECALL_ALWAYS = frozenset(
    """mtlgit mtlgit.analysis mtlgit.cli mtlgit.cli.args mtlgit.cli.entry mtlgit.cli.fast mtlgit.cli.recall_run
    mtlgit.confidence mtlgit.embed mtlgit.errors mtlgit.index mtlgit.index.arrays mtlgit.index.build
    mtlgit.index.check mtlgit.index.common mtlgit.index.freshness mtlgit.index.manifest mtlgit.index.segment
    mtlgit.index.snapshot mtlgit.index.sources mtlgit.index.worktree mtlgit.progress mtlgit.query mtlgit.recall
    mtlgit.recall_request mtlgit.render mtlgit.repo mtlgit.rules mtlgit.wordpiece""".split()
)
RECALL_ANY = RECALL_ALWAYS | frozenset(
    """mtlgit.abstraction mtlgit.applicability mtlgit.cache mtlgit.citations mtlgit.cli.paths mtlgit.config
    mtlgit.frontmatter mtlgit.git mtlgit.gitobjects mtlgit.ids mtlgit.index.writer mtlgit.lock mtlgit.memory
    mtlgit.pools mtlgit.receipts mtlgit.secrets mtlgit.staleness""".split()
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def edges(local_lines: dict[tuple[str, str], list[int]] | None = None) -> dict[str, dict[str, bool]]:
    """module -> {imported module: True when imported at module level (outside functions)}; numpy and
    subprocess count as modules. ``local_lines`` receives the lines of each function-local import, by (module,
    imported module)."""
    modules = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    graph: dict[str, dict[str, bool]] = {name: {} for name in modules}
    for heavy in HEAVY:
        graph[heavy] = {}
    lines = local_lines if local_lines is not None else {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        _visit(tree, name, package, modules, graph[name], top=True, lines=lines)
    return graph


def _visit(
    node: ast.AST,
    name: str,
    package: str,
    modules: dict[str, Path],
    out: dict[str, bool],
    top: bool,
    lines: dict[tuple[str, str], list[int]],
) -> None:
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
            while target and target not in modules and target not in HEAVY:
                target = target.rpartition(".")[0]
            if target and target != name:
                out[target] = out.get(target, False) or top
                if not top:
                    lines.setdefault((name, target), []).append(child.lineno)
        _visit(child, name, package, modules, out, inner, lines)


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


def reachable(graph: dict[str, dict[str, bool]], start: str, parents: bool = False) -> dict[str, str]:
    """Every module ``start`` loads through module-level imports, each with the module that imports it;
    ``parents``: with the packages Python runs first (``mtlgit.index.common`` runs ``mtlgit/index/__init__.py``),
    which cost time but close no cycle (a package is in ``sys.modules`` before its ``__init__`` ends)."""
    seen = {start: ""}
    todo = [start]
    while todo:
        here = todo.pop()
        after = [there for there, top in graph[here].items() if top]
        if parents:
            after += [p for p in (here.rpartition(".")[0],) if p in graph]
        for there in after:
            if there not in seen:
                seen[there] = here
                todo.append(there)
    return seen


def local_reasons(
    graph: dict[str, dict[str, bool]], lines: dict[tuple[str, str], list[int]]
) -> list[tuple[str, str, str]]:
    """(module, imported mtlgit module, reason) for each function-local import; the reason is "" when the import
    could be at the top (see the module's docstring)."""
    plain = {name: reachable(graph, name) for name in graph}
    loading = {name: reachable(graph, name, parents=True) for name in graph}
    out = []
    for module, target in sorted(lines):
        if target in HEAVY:
            continue
        loads, costs, has = plain[target], loading[target], loading[module]
        if target in has:
            reason = ""  # loaded with the module anyway
        elif module in loads:
            chain = [module]
            while chain[-1] != target:
                chain.append(loads[chain[-1]])
            reason = "cycle: " + " <- ".join(chain)
        elif module in RECALL_ANY and target not in RECALL_ALWAYS:
            reason = f"recall path: the plainest recall does not load {target}"
        elif heavy := [h for h in HEAVY if h in costs and h not in has]:
            reason = f"{heavy[0]}: {module} loads without it, {target} brings it"
        elif module.startswith("mtlgit.cli."):
            reason = "command: click loads a command's module to look it up (its help too); its library when it runs"
        elif module == "mtlgit":
            reason = "lazy package names"
        else:
            reason = ""
        out.append((module, target, reason))
    return out


def pairs(graph: dict[str, dict[str, bool]]) -> list[tuple[str, str]]:
    """Two modules that import each other (in any way)."""
    return sorted((a, b) for a in graph for b in graph[a] if a < b and a in graph[b])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true")
    parser.add_argument("--local", action="store_true")
    args = parser.parse_args()
    lines: dict[tuple[str, str], list[int]] = {}
    graph = edges(lines)
    if args.edges:
        for a in sorted(graph):
            for b, top in sorted(graph[a].items()):
                print(f"{a} {'->' if top else '~>'} {b}")
        return
    if args.local:
        found = local_reasons(graph, lines)
        for module, target, reason in found:
            where = ",".join(str(n) for n in sorted(set(lines[(module, target)])))
            print(f"{module} ~> {target} (line {where}): {reason or 'movable'}")
        print(f"{len(found)} function-local imports of mtlgit modules, {sum(not r for _m, _t, r in found)} movable")
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
