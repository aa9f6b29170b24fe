"""The imports of `chains/`, read from the AST (every import counted: module level, inside
functions and under TYPE_CHECKING, so nothing hides in a deferred import): no cycle among its
modules, and of pack only what a chainlet image has (generate.py copies chains/ into the image's
packages/; the image has /app/packager holding constants.py and runtime/, not config/ or the rest)."""

from __future__ import annotations

import ast
from pathlib import Path

CHAINS = Path(__file__).resolve().parents[2] / "chains"


def _module_name(path: Path) -> str:
    parts = path.relative_to(CHAINS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package: str, files: set[str]) -> set[str]:
    """The modules a file imports, relative imports resolved; `from . import streaming` is the
    submodule, `from .errors import X` the module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names}
    return found


def _files() -> dict[str, Path]:
    return {_module_name(p): p for p in CHAINS.rglob("*.py") if "_shims" not in p.parts}


def _graph() -> dict[str, set[str]]:
    """chains module -> the chains modules it imports (the parent package an import of a
    submodule runs first is not an edge: every submodule has it)."""
    files = _files()
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = {m for m in _imports(path, package, set(files)) if m in files and m != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per back edge of a depth-first walk (empty when the graph is acyclic)."""
    found: list[list[str]] = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_reads_relative_and_deferred_imports() -> None:
    graph = _graph()
    assert {"chains.framework", "chains.validation", "chains.local_run", "chains.streaming"} <= set(graph)
    assert "chains.validation" in graph["chains.framework"]
    assert "chains.streaming" in graph["chains"]  # `from . import streaming`
    assert "chains.strict" in graph["chains.local_run"]  # imported inside a function


def test_chains_has_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles in chains/: " + "; ".join(" -> ".join(c) for c in cycles)


# What of pack a chainlet image holds beside chains/ (templates/dockerfile/runtime.j2).
IN_IMAGE = ("packager", "packager.constants", "packager.runtime")
# chains.push generates trusses: pack's own verb, on the machine that runs pack, never in an image.
HOST_ONLY = {"chains": ("packager.chains_codegen",)}


def test_chains_imports_of_pack_only_what_an_image_has() -> None:
    files = _files()
    bad = []
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        allowed = IN_IMAGE + HOST_ONLY.get(name, ())
        for module in sorted(_imports(path, package, set(files))):
            if module.split(".")[0] == "packager" and not any(
                    module == a or module.startswith(a + ".") for a in allowed):
                bad.append(f"{path.relative_to(CHAINS.parent)} imports {module}")
    assert bad == []
