"""What the build's download stages run: the import closure, inside packager, of the downloader
(`python -m packager.runtime.transfer`) and the external_data fetcher, not the whole runtime.

A baked weight layer's cache key covers everything its step can see, so copying the whole runtime
into the download stages meant that any change to the server or the prefetch (or any pack upgrade)
ran every download step again: locally the weights came from the cache mount, but a CI runner
building --cache-from a pushed image downloaded every byte from the hub again. Now only a change
to the downloader's own code (or to constants.py, which it reads) does. packager/__init__.py is
written here without the version, for the same reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import packager
from packager.runtime import modules

ENTRY_MODULES = (modules.TRANSFER, modules.EXTERNAL_DATA)
PACKAGE_INIT = '"""pack\'s downloader, as the weight stages run it (packager/render/fetcher_files.py)."""\n'


def _module_file(root: Path, name: str) -> Path | None:
    """packager.a.b -> root/a/b.py or root/a/b/__init__.py (root is packager's directory)."""
    parts = name.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if parts and candidate.is_file():
            return candidate
    return None


def _module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
    return ".".join(["packager", *parts])


def _imports(root: Path, path: Path) -> set[str]:
    """packager modules `path` imports (absolute or relative; `from P import m` counts m when it is
    a module of P)."""
    own = _module_name(root, path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "packager" or name.startswith("packager.")}


def fetcher_closure(root: Path | None = None) -> list[Path]:
    """Every packager file the download stages import, with each package's __init__.py on the way,
    sorted (absolute paths under `root`, packager's directory)."""
    root = root or Path(packager.__file__).parent
    todo = [*ENTRY_MODULES, *(f"{name}.__main__" for name in ENTRY_MODULES)]  # `python -m` runs either
    files: set[Path] = set()
    while todo:
        name = todo.pop()
        path = _module_file(root, name)
        if path is None or path in files:
            continue
        files.add(path)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(2, len(parts))]  # the packages on the way
        todo += sorted(_imports(root, path))
    return sorted(files)


def write_fetcher(dest: Path) -> None:
    """The closure at dest/packager/..., with a version-free packager/__init__.py."""
    root = Path(packager.__file__).parent
    target = dest / "packager"
    target.mkdir(parents=True)
    (target / "__init__.py").write_text(PACKAGE_INIT, encoding="utf-8")
    for path in fetcher_closure(root):
        out = target / path.relative_to(root)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(path.read_bytes())
