"""Loading a chain file the way pack's tooling does: by file path, under its file stem, with the
Truss import names mapped to pack (`truss_chains` -> `chains`, `truss.truss_config` ->
`chains.truss_config` when no real truss is installed), and validation errors raised at once."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .framework import chain_name as _chain_name
from .framework import find_entrypoint, find_model
from .validation import raise_validation_errors

SHIMS_DIR = Path(__file__).resolve().parent / "_shims"
ALIAS_DIR = SHIMS_DIR / "alias"
TRUSS_SHIM_DIR = SHIMS_DIR / "truss"
RESERVED_MODULE_NAMES = ("model", "chains", "truss_chains", "truss", "packager")


@dataclass(frozen=True)
class LoadedChain:
    source: Path
    module: types.ModuleType
    entrypoint: type
    chain_name: str

    @property
    def workspace(self) -> Path:
        return self.source.parent


def real_truss_installed() -> bool:
    module = sys.modules.get("truss")
    if module is not None:
        return not str(getattr(module, "__file__", "")).startswith(str(TRUSS_SHIM_DIR))
    saved = [p for p in sys.path if Path(p or ".").resolve() == TRUSS_SHIM_DIR]
    for p in saved:
        sys.path.remove(p)
    try:
        return importlib.util.find_spec("truss") is not None
    finally:
        sys.path.extend(saved)


@contextlib.contextmanager
def compat_imports() -> Iterator[None]:
    """`truss_chains` (always) and `truss` (only if not installed) resolve to pack's shims."""
    alias = str(ALIAS_DIR)
    existing = sys.modules.get("truss_chains")
    if existing is not None and not str(getattr(existing, "__file__", "")).startswith(alias):
        for name in [n for n in sys.modules if n == "truss_chains" or n.startswith("truss_chains.")]:
            del sys.modules[name]
    sys.path.insert(0, alias)
    add_truss = not real_truss_installed() and str(TRUSS_SHIM_DIR) not in sys.path
    if add_truss:
        sys.path.append(str(TRUSS_SHIM_DIR))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(alias)
        # The truss shim stays importable: chain code may import it lazily after loading.


def check_source_name(path: Path) -> str:
    stem = path.stem
    if path.suffix != ".py":
        raise ValueError(f"{path}: a chain file must be a .py file")
    if not stem.isidentifier() or "-" in stem:
        raise ValueError(f"{path}: `{stem}` is not a valid module name (no `-`, no leading digit); "
                         "rename the file")
    if stem in RESERVED_MODULE_NAMES:
        raise ValueError(f"{path}: the module name `{stem}` is reserved; rename the file")
    return stem


@dataclass(frozen=True)
class LoadedModel:
    """A model file (Truss's python-config DX): its module and its one ModelBase class."""

    source: Path
    module: types.ModuleType
    model: type


def load_model(source: str | os.PathLike[str]) -> LoadedModel:
    """Import a ModelBase file as a chain file is imported; raise its validation errors; find
    the one class that inherits from ModelBase."""
    path = Path(source).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    module = import_source(path)
    raise_validation_errors()
    return LoadedModel(path, module, find_model(module))


def load_chain(source: str | os.PathLike[str], entrypoint: Optional[str] = None,
               name: Optional[str] = None) -> LoadedChain:
    """Import the chain file, raise its validation errors, find its entrypoint."""
    path = Path(source).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such chain file")
    module = import_source(path)
    raise_validation_errors()
    entry = find_entrypoint(module, entrypoint)
    return LoadedChain(path, module, entry, _chain_name(entry, name))


def import_source(path: Path) -> types.ModuleType:
    """Import a chain or model file under its stem, with its directory on sys.path and the
    Truss names mapped to pack; loading the same file again returns the loaded module."""
    stem = check_source_name(path)
    module = sys.modules.get(stem)
    if module is not None:
        if Path(getattr(module, "__file__", "") or "").resolve() != path:
            raise ImportError(f"{path}: a module named `{stem}` is already imported from "
                              f"{getattr(module, '__file__', None) or 'elsewhere'}. Try renaming "
                              "your source file.")
    else:
        workspace = str(path.parent)
        if workspace not in sys.path:
            sys.path.insert(0, workspace)
        with compat_imports():
            spec = importlib.util.spec_from_file_location(stem, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[stem] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(stem, None)
                raise
    return module
