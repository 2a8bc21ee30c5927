"""The product stands without the tooling, and no first-party import goes round in a circle.

Read from the source with ``ast`` (module-level and function-level imports alike), so a
lazy import inside a command handler counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast

from tests.factories import REPO

PACKAGES = ("stream_app", "schemas", "tools")


def import_graph(packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the first-party modules (of ``packages``, ``bench`` and ``tests``) it imports."""
    modules = {
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): path
        for package in (*packages, "bench", "tests")
        for path in (REPO / package).rglob("*.py")
    }

    def module_of(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name.split(".")[0] not in packages:
            continue
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        found = {module_of(target) for target in imported}
        # a module's own package (``from stream_app import cli`` names it) is no edge
        graph[name] = {m for m in found if m and m != name and not name.startswith(f"{m}.")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each as the path that closes it (depth-first, three colours)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target in graph and target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_the_product_imports_no_tooling_bench_or_tests() -> None:
    graph = import_graph()
    offenders = {
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.split(".")[0] in ("stream_app", "schemas")
        for target in targets
        if target.split(".")[0] in ("tools", "bench", "tests")
    }
    assert offenders == set()


def test_no_first_party_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
