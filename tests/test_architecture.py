"""Import rules of the architecture, checked by reading every module's imports (AST)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "packager"


def _imports(path: Path) -> set[str]:
    """Absolute names of the packager modules a file imports (relative imports resolved)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        module = module.rsplit(".", 1)[0] + ".__init__"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found |= {f"{name}.{a.name}" for a in node.names}
    return {n for n in found if n == "packager" or n.startswith("packager.")}


def _files(sub: str) -> list[Path]:
    return sorted((PACKAGE / sub).rglob("*.py"))


def _violations(sub: str, allowed: tuple[str, ...]) -> list[str]:
    bad = []
    for path in _files(sub):
        for name in _imports(path):
            if name == "packager" or any(name == a or name.startswith(a + ".") for a in allowed):
                continue
            bad.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    return bad


def test_runtime_is_a_leaf() -> None:
    # The runtime is copied into images where pack is not installed.
    assert _violations("runtime", ("packager.runtime", "packager.constants", "packager.__version__")) == []


def test_runtime_uses_no_build_time_libraries() -> None:
    heavy = {"pydantic", "jinja2", "docker", "yaml", "rich", "click", "huggingface_hub"}
    bad = []
    for path in _files("runtime"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bad += [f"{path.name}: {n}" for n in names if n.split(".")[0] in heavy]
    assert bad == []


def test_config_imports_only_errors() -> None:
    assert _violations("config", ("packager.config", "packager.errors", "packager.__version__")) == []


def test_render_never_touches_engine_or_registry() -> None:
    assert [v for v in _violations("render", ("packager",)) if ".engine" in v or ".registry" in v] == []
    bad = [f"{p}: {n}" for p in _files("render") for n in _imports(p)
           if n.startswith(("packager.engine", "packager.registry", "packager.cli"))]
    assert bad == []


def test_only_api_and_cli_cross_into_later_stages() -> None:
    bad = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).parts
        if rel[0] in ("cli", "api.py"):
            continue
        for name in _imports(path):
            if name.startswith(("packager.cli", "packager.api")):
                bad.append(f"{'/'.join(rel)} imports {name}")
    assert bad == []


def test_only_cli_output_prints() -> None:
    bad = []
    for path in PACKAGE.rglob("*.py"):
        if path.parts[-2:] == ("cli", "output.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                bad.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert bad == []
