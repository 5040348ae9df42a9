"""The library's modules import each other without circles, counting imports inside functions and for types.

A circle hidden behind a lazy or TYPE_CHECKING import still means two modules cannot be understood (or moved)
one without the other; this keeps the import graph a DAG as the code grows.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def _graph() -> dict[str, set[str]]:
    modules = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found = next((t for t in targets if t in modules and t != name), None)
            if found:
                graph[name].add(found)
    return graph


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path start -> ... -> start, if one exists (depth-first)."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_library_has_no_import_cycles():
    graph = _graph()
    assert len(graph) > 50  # the walk really found the library
    cycles = {tuple(sorted(set(c))) for m in graph if (c := _cycle_from(m, graph))}
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in sorted(cycles))


def _imports_prefect(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
        if any(n == "prefect" or n.startswith("prefect.") for n in names):
            return True
    return False


def test_the_library_never_imports_prefect():
    offenders = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if _imports_prefect(p))
    assert not offenders, f"src/lorag must not import prefect: {offenders}"
