"""Which workspace files a chainlet needs: its module and the local modules it imports,
transitively (chains-compat §11 defect 4: never the whole workspace)."""

from __future__ import annotations

import ast
from pathlib import Path


def _module_file(workspace: Path, dotted: str) -> Path | None:
    base = workspace.joinpath(*dotted.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _module_name(workspace: Path, file: Path) -> str:
    rel = file.relative_to(workspace).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_names(file: Path, module: str) -> list[str]:
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    is_package = file.name == "__init__.py"
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base:
                names.append(base)
                names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names


def code_closure(workspace: Path, start: Path) -> list[Path]:
    """`start` plus every workspace file it imports, directly or not (packages bring their
    parent `__init__.py` files), as sorted paths relative to the workspace."""
    workspace = workspace.resolve()
    seen: set[Path] = set()
    todo = [start.resolve()]
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        module = _module_name(workspace, file)
        parts = module.split(".")
        for i in range(1, len(parts)):  # parent packages are imported first
            parent = _module_file(workspace, ".".join(parts[:i]))
            if parent is not None:
                todo.append(parent.resolve())
        for name in _imported_names(file, module):
            pieces = name.split(".")
            for i in range(1, len(pieces) + 1):
                found = _module_file(workspace, ".".join(pieces[:i]))
                if found is not None:
                    todo.append(found.resolve())
    return sorted(p.relative_to(workspace) for p in seen)
