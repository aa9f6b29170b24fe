"""A ModelBase file (Truss's python-config DX: `truss init --python-config`, `truss push
my_model.py`) -> a truss, as Truss's `gen_truss_model_from_source` makes one: the chainlet
generator of this package writes it (config.yaml from the class's remote_config, model/model.py
serving `predict` at Truss's model route, the file and what it imports under packages/).

The truss lives in pack's cache (`<cache>/pack/models/<stem>-<hash of the file's path>`), one
stable directory per source file, so rebuilds reuse the engine's layer cache; never in the
user's source tree. Problems are reported against the user's file: validation errors at their
line, config errors at the class statement (the config is generated from its remote_config).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from packager.cache_dirs import keyed_dir
from packager.config import LoadedConfig
from packager.errors import ConfigError, PackError, Problem

if TYPE_CHECKING:  # imported where used: `pack` commands that never see a model file skip them
    from chains.descriptors import ChainletDescriptor
    from chains.loading import LoadedModel

MODELS_DIR = "models"
KEPT_FILES = ("pack.lock",)  # pinned weights survive regeneration
_RESERVED_HINT = ("rename the file, e.g. to my_model.py as `truss init --python-config` names it "
                  "(Truss reserves model.py too: it is the generated truss's own module)")


@dataclass(frozen=True)
class ModelTruss:
    source: Path  # the user's .py file (absolute)
    class_name: str
    line: int  # of the class statement
    model_name: str
    truss_dir: Path  # the generated truss

    def relocate(self, problems: tuple[Problem, ...] | list[Problem]) -> list[Problem]:
        """Problems of the generated config.yaml, placed at the class statement of the source
        (the config is written from its remote_config)."""
        where = "set it in the class's remote_config (pack writes config.yaml from it)"
        return [Problem(str(self.source), p.path, self.line, None, p.message,
                        f"{p.hint}; {where}" if p.hint else where, p.severity) for p in problems]

    def located(self, loaded: LoadedConfig) -> LoadedConfig:
        return replace(loaded, warnings=tuple(self.relocate(loaded.warnings)))


def model_truss_dir(source: str | os.PathLike[str]) -> Path:
    """Where the truss of `source` is generated: the same place every time, for this file."""
    return keyed_dir(MODELS_DIR, Path(source))


def generate_model_truss(source: str | os.PathLike[str]) -> ModelTruss:
    """Import the file, validate its ModelBase class and (re)write its truss; ConfigError with
    every problem positioned in the user's file."""
    path = Path(source).absolute()
    if not path.is_file():
        raise ConfigError(problems=[Problem(str(path), "", None, None, "no such model file",
                                            "pass a .py file that defines a ModelBase class, or a truss directory")])
    if path.stem == "model":
        raise ConfigError(problems=[Problem(str(path), "", None, None,
                                            "the module name `model` is reserved", _RESERVED_HINT)])
    target = model_truss_dir(path)
    if target.resolve().is_relative_to(path.parent.resolve()):
        raise PackError(f"pack's cache {target.parent} is inside the model's directory {path.parent}",
                        hint="point XDG_CACHE_HOME outside the source tree")
    loaded = _load(path)
    descriptor = _descriptor(loaded.model)
    return _write(path, loaded.model, descriptor, target)


def _load(path: Path) -> LoadedModel:
    from chains.errors import ChainsUsageError
    from chains.loading import load_model

    try:
        return load_model(path)
    except ChainsUsageError as exc:
        problems = [Problem(e.file, e.location, e.line, None, e.message) for e in exc.validation_errors]
        raise ConfigError(problems=problems or [Problem(str(path), "", None, None, str(exc))]) from None
    except SyntaxError as exc:
        raise ConfigError(problems=[Problem(exc.filename or str(path), "", exc.lineno, exc.offset,
                                            f"Python syntax error: {exc.msg}", "fix the code at this line")]) from None
    except ValueError as exc:
        message = str(exc).removeprefix(f"{path.resolve()}: ").removeprefix(f"{path}: ")
        hint = _RESERVED_HINT if "reserved" in message else None
        raise ConfigError(problems=[Problem(str(path), "", None, None, message, hint)]) from None
    except Exception as exc:  # noqa: BLE001 - importing the file runs the user's code: it may raise anything
        # The file runs on this machine to read its class (as with Truss): its imports must work here.
        line = next((f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__))
                     if Path(f.filename).resolve() == path.resolve()), None)
        raise ConfigError(problems=[Problem(
            str(path), "", line, None, f"importing the file raised {type(exc).__name__}: {exc}",
            "pack imports the file to read its ModelBase class, as Truss does: install what its "
            "top-level imports need on this machine, or import heavy libraries inside methods",
        )]) from None


def _descriptor(model: type) -> ChainletDescriptor:
    from chains.framework import registry

    return registry.descriptor(model)


def _write(path: Path, model: type, descriptor: ChainletDescriptor, target: Path) -> ModelTruss:
    """Generate into a sibling staging directory and swap it in, so a reader never sees half a
    truss; the lock of the previous generation is kept."""
    from chains.errors import ChainsDeploymentError

    from .generate import _write_chainlet

    name = descriptor.display_name
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    truss = ModelTruss(path, descriptor.name, descriptor.line, name, target)
    try:
        try:
            written = _write_chainlet(descriptor, name, path.resolve(), path.resolve().parent, staging,
                                      name=name, generator="pack")
        except ConfigError as exc:
            raise ConfigError(problems=truss.relocate(exc.problems),
                              warnings=truss.relocate(exc.warnings)) from None
        except ChainsDeploymentError as exc:
            raise ConfigError(problems=[Problem(str(path), descriptor.name, descriptor.line, None,
                                                str(exc))]) from None
        for kept in KEPT_FILES:
            if (target / kept).is_file():
                shutil.copyfile(target / kept, written.path / kept)
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            target.rename(old)
        written.path.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return truss


__all__ = ["ModelTruss", "generate_model_truss", "model_truss_dir"]
