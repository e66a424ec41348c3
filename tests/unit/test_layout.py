"""The package's shape, kept: imports run one way (no circles), the library never imports the command line, and the
modules the command line needs to parse its options import neither DI-engine nor torch."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

SRC = REPO / "src" / "dqnkit"


def _module(path: Path) -> str:
    return ".".join(("dqnkit", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")


def _imports() -> dict[str, set[str]]:
    """Each module of the package -> the package modules it imports, anywhere in its body."""
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dqnkit"):
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.startswith("dqnkit")]
            found |= {t for t in targets if t in modules and t != name}
        graph[name] = found
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_imports_run_one_way() -> None:
    assert _cycle(_imports()) is None, " -> ".join(_cycle(_imports()) or [])


def test_the_library_never_imports_the_command_line() -> None:
    offenders = {m: sorted(d for d in deps if d.startswith("dqnkit.cli")) for m, deps in _imports().items()}
    assert not {m: d for m, d in offenders.items() if d and not m.startswith("dqnkit.cli")}


def test_option_parsing_needs_no_heavy_module() -> None:
    """What cli/*.py import at module level: the standard library and a few light modules of the package."""
    light = {"dqnkit", "dqnkit.cli", "dqnkit.cli.common", "dqnkit.errors", "dqnkit.nodes", "dqnkit.signals"}
    for path in (SRC / "cli").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: commands import the library inside their command function
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dqnkit"):
                assert node.module in light, f"{path.name} imports {node.module} at module level"
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n.split(".")[0] in {"ding", "torch", "gym", "gymnasium"} for n in names), path.name
