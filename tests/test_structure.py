"""The shape of the house: no import cycles in favdesk, and the stand-ins wired in one place."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "favdesk"
#: The one production module that may import `favdesk.sandbox`: it wires demo mode.
DEMO_WIRING = "favdesk.services"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def favdesk_imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("favdesk"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("favdesk"))
    return found


def load_time_imports(tree: ast.Module) -> set[str]:
    """Imports run when the module loads: not those inside functions or `if TYPE_CHECKING`."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.ClassDef):
            continue
        found |= favdesk_imports(node)
    return found


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}


def test_favdesk_has_no_import_cycles():
    trees = modules()
    graph = {
        name: {dep for dep in load_time_imports(tree) if dep in trees and dep != name}
        for name, tree in trees.items()
    }
    cycles = []

    def visit(name: str, path: list[str], done: set[str]) -> None:
        for dep in sorted(graph[name]):
            if dep in path:
                cycles.append(" -> ".join([*path[path.index(dep) :], dep]))
            elif dep not in done:
                done.add(dep)
                visit(dep, [*path, dep], done)

    for name in graph:
        visit(name, [name], set())
    assert cycles == []


def test_only_the_demo_wiring_imports_the_stand_ins():
    importers = {
        name
        for name, tree in modules().items()
        if not name.startswith("favdesk.sandbox")
        and any(dep.startswith("favdesk.sandbox") for dep in favdesk_imports(tree))
    }
    assert importers == {DEMO_WIRING}
