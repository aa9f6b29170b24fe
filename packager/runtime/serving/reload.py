"""Reload in place (`pack watch`): the config and code on disk now, loaded as a new instance beside
the one serving, then swapped in.

    config read again (.pack/config.json) -> the truss's modules dropped from sys.modules (files
    under the app, model and packages dirs; never pack's own `packager`) -> loader.load_model in a
    thread (import, __init__, setup_environment, load(); an async load runs on the serving loop)
    -> ModelServer.install on the loop: the new pipeline takes new requests, the old one finishes
    its requests and closes

A failure at any step restores the previous modules and leaves the serving instance alone
(readiness stays 200); the failure is returned, never raised into the loop. Only the reload
control (packager/runtime/dev) imports this module, so a server without it never compiles it.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .app_config import ServingSettings, load_config
from .loader import LoadedModel, LoadFailed, RunCoroutine, load_model
from .server import FAILED, RELOADING, coroutine_runner

if TYPE_CHECKING:
    from .server import ModelServer

# Compiled extensions cannot be initialised twice in one interpreter: they stay as first imported.
_SOURCE_SUFFIXES = (".py", ".pyc")
_STAGES = (("import_end", "import"), ("init_end", "init"), ("load_end", "load"))


@dataclass
class ReloadOutcome:
    generation: int  # after the reload: one more than before when it succeeded
    seconds: dict[str, float]  # import, init, load (the stages reached)
    error: BaseException | None = None


@dataclass
class _Fresh:
    loaded: LoadedModel
    config: dict[str, Any]
    settings: ServingSettings


@dataclass
class _Attempt:
    started: float = field(default_factory=time.monotonic)
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, stage: str) -> None:
        self.marks[stage] = time.monotonic()

    def seconds(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        previous = self.started
        for stage, name in _STAGES:
            if stage not in self.marks:
                break
            seconds[name] = round(self.marks[stage] - previous, 4)
            previous = self.marks[stage]
        return seconds


class Reloader:
    def __init__(self, server: ModelServer):
        self._server = server
        self._lock = asyncio.Lock()

    async def reload(self) -> ReloadOutcome:
        """Load what is on disk now and swap it in; on failure the current instance keeps serving.
        One at a time; waits for the first load to end."""
        server = self._server
        assert server.first_load_done is not None
        async with self._lock:
            await server.first_load_done.wait()
            loop = asyncio.get_running_loop()
            server.state = RELOADING
            attempt = _Attempt()
            fresh = await loop.run_in_executor(None, self._load_fresh, coroutine_runner(loop), attempt)
            if isinstance(fresh, BaseException):
                server.log_failure(f"reload failed (generation {server.generation} keeps serving)"
                                   if server.ready else "reload failed", fresh)
                server.state, server.last_error = FAILED, fresh
                return ReloadOutcome(server.generation, attempt.seconds(), fresh)
            server.install(fresh.loaded, fresh.config, fresh.settings)
            return ReloadOutcome(server.generation, attempt.seconds())

    def _load_fresh(self, run_coroutine: RunCoroutine, attempt: _Attempt) -> _Fresh | BaseException:
        """In a thread. A failure is returned, so that nothing the model raises (SystemExit
        included) reaches the event loop."""
        server = self._server
        paths = server.paths
        try:
            config = load_config(paths)
            settings = ServingSettings.from_config(config)
            if settings.docker_server is not None:
                raise LoadFailed("the config now has docker_server: that needs a restart, not a reload")
            code_dirs = (paths.app_dir, paths.packages_dir, os.path.join(paths.app_dir, settings.model_module_dir))
            previous = forget_user_modules(code_dirs)
            try:
                loaded = load_model(paths, config, settings, server.prefetch, server.timeline, run_coroutine,
                                    attempt.mark)
            except BaseException:
                restore_user_modules(previous, code_dirs)
                raise
            return _Fresh(loaded, config, settings)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller, the old model serves on
            return exc


def _is_user_module(name: str, module: ModuleType, roots: tuple[str, ...]) -> bool:
    if name == "packager" or name.startswith("packager."):  # pack's runtime lives under /app too
        return False
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        locations = [file] if file.endswith(_SOURCE_SUFFIXES) else []
    else:  # a namespace package (`model/` without __init__.py) has only its search path
        locations = [p for p in getattr(module, "__path__", None) or () if isinstance(p, str)]
    return any(os.path.abspath(p).startswith(roots) for p in locations)


def forget_user_modules(code_dirs: Iterable[str]) -> dict[str, ModuleType]:
    """Drop the truss's own modules (files under `code_dirs`) from sys.modules so the next import
    runs the code on disk now; returns what was dropped, for restore_user_modules."""
    roots = tuple(os.path.abspath(d).rstrip(os.sep) + os.sep for d in code_dirs)
    dropped = {name: module for name, module in list(sys.modules.items())
               if module is not None and _is_user_module(name, module, roots)}
    for name in dropped:
        sys.modules.pop(name, None)
    importlib.invalidate_caches()  # a file created since the last import must be found
    return dropped


def restore_user_modules(dropped: dict[str, ModuleType], code_dirs: Iterable[str]) -> None:
    """Undo a failed fresh import: the half-imported new modules out, the previous ones back (the
    instance still serving may import lazily)."""
    forget_user_modules(code_dirs)
    sys.modules.update(dropped)
