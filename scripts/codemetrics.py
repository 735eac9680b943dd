"""Print the shape of src/memwarden: its import graph's cycles, long modules, long functions.

Read from `ast` alone (no import of the code, no third-party tool) so the figures can be
taken on any checkout, before and after a refactoring, and compared line by line:

    python scripts/codemetrics.py [--src src] [--module-lines 300] [--function-lines 60] [--graph]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    """Dotted name of a source file under root (`pkg/__init__.py` is `pkg`)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """Absolute name a relative `from . import x` refers to."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *(node.module.split(".") if node.module else [])])


def imports(tree: ast.Module, module: str, is_package: bool, known: set[str]) -> set[str]:
    """Modules of ours this module imports at run time (imports under TYPE_CHECKING excluded)."""
    found: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = resolve(module, is_package, node)
            # `from pkg import mod` imports pkg/__init__ too, but counting it as an edge
            # would make every `from . import sibling` a cycle through the package.
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def long_functions(tree: ast.Module, limit: int) -> list[tuple[int, str, int]]:
    """(length, qualified name, first line) of every function longer than limit lines."""
    out: list[tuple[int, str, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    length = (child.end_lineno or child.lineno) - child.lineno + 1
                    if length > limit:
                        out.append((length, name, child.lineno))
                walk(child, f"{name}.")

    walk(tree, "")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parent.parent / "src")
    parser.add_argument("--module-lines", type=int, default=300)
    parser.add_argument("--function-lines", type=int, default=60)
    parser.add_argument("--graph", action="store_true", help="also print every module's imports")
    args = parser.parse_args(argv)

    files = sorted(args.src.rglob("*.py"))
    names = {path: module_name(path, args.src) for path in files}
    known = set(names.values())
    trees = {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in files}
    graph = {names[p]: imports(trees[p], names[p], p.name == "__init__.py", known) for p in files}

    found = cycles(graph)
    edges = sum(len(targets) for targets in graph.values())
    print(f"modules: {len(files)}  import edges: {edges}  cycles: {len(found)}")
    for component in found:
        print(f"  cycle of {len(component)}: {' '.join(component)}")
    if args.graph:
        for module in sorted(graph):
            print(f"  {module} -> {', '.join(sorted(graph[module])) or '-'}")

    sizes = sorted(((len(p.read_text(encoding="utf-8").splitlines()), names[p]) for p in files), reverse=True)
    big = [(n, m) for n, m in sizes if n > args.module_lines]
    print(f"modules over {args.module_lines} lines: {len(big)}")
    for lines, module in big:
        print(f"  {lines:5d}  {module}")

    functions = sorted(
        ((length, f"{names[p]}.{name}") for p in files for length, name, _ in long_functions(trees[p], args.function_lines)),
        reverse=True,
    )
    print(f"functions over {args.function_lines} lines: {len(functions)}")
    for length, name in functions:
        print(f"  {length:5d}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
