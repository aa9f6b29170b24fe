"""What a truss's own code imports, read statically (ast; nothing is executed).

The code is model/ (config's model_module_dir), the bundled packages dir and every
external_package_dirs entry: the directories Truss puts on sys.path. Imports that resolve to those
directories (a sibling of model.py, a package under packages/, the model dir itself as seen from
/app) and relative imports are the truss's own; everything else is reported as an ImportSite.

What counts: `import a.b`, `from a.b import c` (as `a.b`, with `c` kept for namespace packages
such as opentelemetry), and `importlib.import_module("a")` / `__import__("a")` with a literal
name, wherever they appear (module level, functions, branches). Imports under
`if TYPE_CHECKING:` never run and are skipped. Imports in the body of a `try` whose handlers
catch ImportError (or a base of it) are marked `guarded`.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Directories that are never the truss's code (tool caches, virtual environments, VCS).
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".mypy_cache", ".pytest_cache",
              ".ruff_cache", "node_modules", ".ipynb_checkpoints", "site-packages"}
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


@dataclass(frozen=True)
class ImportSite:
    module: str  # the absolute module named, "yaml", "opentelemetry.sdk.trace"
    file: str  # where, relative to the truss directory when inside it
    line: int
    guarded: bool = False  # inside `try: ... except ImportError`
    names: tuple[str, ...] = ()  # `from module import names` (namespace packages resolve by them)

    def candidates(self) -> tuple[str, ...]:
        """The dotted names this import may load: `module.name` for each name of a from-import
        (a name may be a submodule), else the module."""
        named = tuple(f"{self.module}.{n}" for n in self.names if n != "*")
        return named or (self.module,)

    def as_dict(self) -> dict[str, str | int | bool]:
        return {"module": self.module, "file": self.file, "line": self.line, "guarded": self.guarded}

    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class CodeImports:
    sites: tuple[ImportSite, ...]
    unscanned: tuple[str, ...]  # "file: reason" for files that could not be parsed


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    for node in types:
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
        if name in _IMPORT_ERRORS:
            return True
    return False


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _literal_import(node: ast.Call) -> str | None:
    func = node.func
    is_import = (isinstance(func, ast.Name) and func.id in ("__import__", "import_module")) or \
        (isinstance(func, ast.Attribute) and func.attr == "import_module")
    if not is_import or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value and not arg.value.startswith("."):
        return arg.value
    return None


class _Visitor(ast.NodeVisitor):
    def __init__(self, file: str):
        self.file = file
        self.guard_depth = 0
        self.sites: list[ImportSite] = []

    def _add(self, module: str, line: int, names: tuple[str, ...] = ()) -> None:
        self.sites.append(ImportSite(module, self.file, line, self.guard_depth > 0, names))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module and node.module != "__future__":
            self._add(node.module, node.lineno, tuple(a.name for a in node.names))

    def visit_Call(self, node: ast.Call) -> None:
        module = _literal_import(node)
        if module is not None:
            self._add(module, node.lineno)
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Try(self, node: ast.Try) -> None:
        self._visit_try(node)

    def visit_TryStar(self, node: ast.TryStar) -> None:
        self._visit_try(node)

    def _visit_try(self, node: ast.Try | ast.TryStar) -> None:
        guarded = any(_catches_import_error(h) for h in node.handlers)
        self.guard_depth += guarded
        for statement in node.body:
            self.visit(statement)
        self.guard_depth -= guarded
        for child in [*node.handlers, *node.orelse, *node.finalbody]:
            self.visit(child)


def top_level_names(directory: Path) -> set[str]:
    """Module names importable from `directory` when it is on sys.path."""
    names: set[str] = set()
    if not directory.is_dir():
        return names
    for child in directory.iterdir():
        if child.name.startswith(".") or child.name in _SKIP_DIRS:
            continue
        if child.is_dir():
            names.add(child.name)  # a package, or a namespace package without __init__.py
        elif child.suffix in (".py", ".pyc", ".so", ".pyd"):
            names.add(child.name.split(".", 1)[0])
    return names


def _python_files(directory: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(root) / name


def _display(path: Path, truss_dir: Path) -> str:
    return Path(os.path.relpath(path, truss_dir)).as_posix()


def scan(truss_dir: Path, code_dirs: Iterable[Path], local_names: Iterable[str] = ()) -> CodeImports:
    """Every third-party import in the .py files under `code_dirs`.

    Local modules are the top-level names of `code_dirs` plus `local_names` (the model dir's own
    name, importable from /app)."""
    dirs = [d for d in code_dirs if d.is_dir()]
    local = set(local_names).union(*(top_level_names(d) for d in dirs))
    sites: list[ImportSite] = []
    unscanned: list[str] = []
    seen: set[Path] = set()
    for directory in dirs:
        for path in _python_files(directory):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            shown = _display(path, truss_dir)
            try:
                tree = ast.parse(path.read_bytes(), filename=str(path))
            except (SyntaxError, ValueError, OSError) as exc:
                where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
                unscanned.append(f"{shown}: {type(exc).__name__}{where}")
                continue
            visitor = _Visitor(shown)
            visitor.visit(tree)
            sites += [s for s in visitor.sites if s.module.split(".", 1)[0] not in local]
    return CodeImports(tuple(sites), tuple(unscanned))
