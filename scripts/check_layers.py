"""Check the layering of the project's packages (CI runs it; README "Layout").

    core < accounts < usage < providers < alerts < gateway

A module may import from its own layer or a lower one, never from a higher one,
at the top of the file or inside a function alike; and no two modules of the
project may import each other, directly or through others. Every import
statement is read from the source (ast), so a lazy import is caught too.
Prints one line per violation and exits 1 when there is any.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LAYERS = ("core", "accounts", "usage", "providers", "alerts", "gateway")
RANK = {name: rank for rank, name in enumerate(LAYERS)}
ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, imported project module) for every import statement in the file."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a import b` imports the module a.b when there is one, else names of a.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target:
                found.append((node.lineno, target))
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    modules = project_modules()
    problems = []
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        layer = name.partition(".")[0]
        for line, target in imports_of(name, path, modules):
            if target == name:
                continue
            graph.setdefault(name, set()).add(target)
            target_layer = target.partition(".")[0]
            if RANK[target_layer] > RANK[layer]:
                where = path.relative_to(ROOT)
                problems.append(f"{where}:{line}: {layer} imports {target} from the higher layer {target_layer}")
    for component in cycles(graph):
        problems.append("import cycle: " + " <-> ".join(component))
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} layering problem(s); the order is {' < '.join(LAYERS)}")
        return 1
    print(f"layers ok: {' < '.join(LAYERS)} ({len(modules)} modules)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
