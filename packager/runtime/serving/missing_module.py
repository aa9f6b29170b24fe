"""A ModuleNotFoundError at start, explained: which module, the line that imported it, the fix.

The usual cause is a package Truss's image has and the truss never listed (pack adds the ones
its code visibly imports, but not those reached through strings or other packages), or a
requirement forgotten altogether. The fix names the pip distribution, not the import name
(`yaml` is installed as pyyaml).
"""

from __future__ import annotations

import importlib.util
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass

from ..pip_names import is_known, pip_name

# packager/runtime: pack's own frames are never the truss's code, though the image keeps them under /app.
_RUNTIME_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class MissingModule:
    module: str  # as Python names it: "yaml", "google.protobuf"
    importer: traceback.FrameSummary | None  # the line that ran the import
    truss_line: traceback.FrameSummary | None  # the truss's own line that led there, if elsewhere

    def message(self) -> str:
        where = f", imported at {_where(self.importer)}" if self.importer else ""
        lines = [f"missing module `{self.module}`{where}"]
        if self.truss_line is not None:
            lines.append(f"  reached from the truss's code at {_where(self.truss_line)}")
        top = self.module.split(".", 1)[0]
        if top != self.module and _installed(top):
            lines.append(f"fix: `{top}` is installed but has no module `{self.module}`: pin the version of "
                         f"{pip_name(top)} that has it in `requirements` in config.yaml, then build again")
            return "\n".join(lines)
        name = pip_name(self.module)
        if is_known(self.module):
            lines.append(f"fix: add `{name}` (the pip name of `{top}`) to `requirements` in config.yaml, "
                         f"then build again")
        else:
            lines.append(f"fix: add `{name}` to `requirements` in config.yaml (if that is its name on PyPI), "
                         f"then build again; if `{top}` is the truss's own module, put it beside "
                         f"model.py or under packages/")
        return "\n".join(lines)


def _where(frame: traceback.FrameSummary) -> str:
    code = f": {frame.line.strip()}" if frame.line else ""
    return f"{frame.filename}:{frame.lineno}{code}"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def exception_chain(exc: BaseException) -> Iterable[BaseException]:
    """`exc`, then what it was raised from or during, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _in_import_system(frame: traceback.FrameSummary) -> bool:
    name = frame.filename
    return name.startswith("<frozen ") or os.path.basename(os.path.dirname(name)) == "importlib"


def is_truss_code(frame: traceback.FrameSummary, roots: tuple[str, ...]) -> bool:
    """The frame runs the truss's own code: a file under one of `roots`, not pack's runtime."""
    path = os.path.abspath(frame.filename)
    if path.startswith(_RUNTIME_DIR + os.sep):
        return False
    return any(path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def explain(exc: BaseException, truss_roots: Iterable[str]) -> MissingModule | None:
    """The ModuleNotFoundError in `exc`'s chain (itself, or what it was raised from), located.

    `truss_roots` are the directories of the truss's own code (/app, /packages): when the import
    ran inside an installed package, the truss's line that reached it is named too."""
    missing = next((e for e in exception_chain(exc) if isinstance(e, ModuleNotFoundError) and e.name), None)
    if missing is None:
        return None
    roots = tuple(os.path.abspath(r) for r in truss_roots)
    inner = [f for f in traceback.extract_tb(missing.__traceback__) if not _in_import_system(f)]
    importer = inner[-1] if inner else None
    truss_line = None
    if importer is None or not is_truss_code(importer, roots):
        frames = [f for e in reversed(list(exception_chain(exc)))
                  for f in traceback.extract_tb(e.__traceback__)]
        truss_line = next((f for f in reversed(frames) if is_truss_code(f, roots)), None)
    return MissingModule(str(missing.name), importer, truss_line)
