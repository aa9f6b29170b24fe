"""Loading the user's model, in Truss's order (truss-compat §2.2 step 3):

    data/ created -> /packages on sys.path -> secrets -> lazy_data_resolver (the prefetch is
    already running) -> model.py imported by file path -> __init__ kwargs by signature ->
    Model(**kwargs) -> method contract checked -> setup_environment(env) -> load() with retries
    -> the manifest must have been collected

pack's differences: an `async def load` is awaited (on the server's event loop, so objects it
creates belong to the loop predict runs on); model.py is registered in sys.modules under a unique
name before it runs (pydantic generics and pickling need a module entry).

A reload in place (`pack watch`, serving/reload.py) runs load_model again with its own stage marks.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from packager import constants

from ..image_paths import RuntimePaths
from ..prefetch.process import Prefetch
from ..timeline import Timeline
from .app_config import ServingSettings
from .lazy_data import LazyDataResolver
from .model_spec import ModelSpec, describe_model
from .secrets import Secrets
from .websocket import prepare as prepare_websocket

log = logging.getLogger("pack.loader")
# Runs an awaitable the model returned on the server's event loop and returns its result.
RunCoroutine = Callable[[Awaitable[object]], object]
MODULE_NAME = "pack_user_model"  # sys.modules key of model.py; chosen not to clash with user code
# Marks a stage of a load (import_end, init_end, load_end): the start-up timeline's, or a reload's.
MarkStage = Callable[[str], object]


class LoadFailed(RuntimeError):
    """The model could not be imported, constructed or loaded; the message says why."""


@dataclass
class LoadedModel:
    instance: object
    spec: ModelSpec
    model_file: str
    resolver: LazyDataResolver
    environment: object  # the dynamic environment's JSON (None when absent)


def read_environment(paths: RuntimePaths) -> object:
    """The mounted dynamic environment (JSON), or None when absent or empty."""
    try:
        with open(paths.environment_file, encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return None
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        log.warning("%s is not JSON; passing environment=None", paths.environment_file)
        return None


def import_model_module(paths: RuntimePaths, settings: ServingSettings) -> ModuleType:
    model_dir = os.path.join(paths.app_dir, settings.model_module_dir)
    model_file = os.path.join(model_dir, settings.model_class_filename)
    if not os.path.isfile(model_file):
        raise LoadFailed(f"{model_file} does not exist (config: model_module_dir="
                         f"{settings.model_module_dir!r}, model_class_filename="
                         f"{settings.model_class_filename!r})")
    # Appended, like /packages: installed packages win over a same-named file beside model.py.
    if model_dir not in sys.path:
        sys.path.append(model_dir)
    spec = importlib.util.spec_from_file_location(MODULE_NAME, model_file)
    if spec is None or spec.loader is None:
        raise LoadFailed(f"{model_file} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        sys.modules.pop(MODULE_NAME, None)
        if "relative import" in str(exc):
            raise LoadFailed(
                f"{model_file} uses a relative import (`from . import ...`), but model.py is "
                f"imported as a top-level module (as in Truss). Import its siblings absolutely: "
                f"`from helpers import x` (the model directory is on sys.path) or "
                f"`from {settings.model_module_dir}.helpers import x`.") from exc
        raise
    except BaseException:
        sys.modules.pop(MODULE_NAME, None)
        raise
    return module


def init_kwargs(model_class: type, available: dict[str, object]) -> dict[str, object]:
    """The kwargs the constructor names, or all of them when it takes **kwargs."""
    try:
        params = inspect.signature(model_class).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return dict(available)
    return {k: v for k, v in available.items()
            if k in params and params[k].kind in (params[k].POSITIONAL_OR_KEYWORD, params[k].KEYWORD_ONLY)}


def call_maybe_async(fn: Callable[..., object], run_coroutine: RunCoroutine, *args: object) -> object:
    result = fn(*args)
    return run_coroutine(result) if inspect.isawaitable(result) else result


def load_with_retries(load: Callable[[], object], run_coroutine: RunCoroutine) -> None:
    retries = os.environ.get(constants.NUM_LOAD_RETRIES_TRUSS, "1").strip()
    attempts = 1 + max(0, int(retries) if retries.isdigit() else 1)
    for attempt in range(1, attempts + 1):
        try:
            call_maybe_async(load, run_coroutine)
            return
        except Exception as exc:
            if attempt == attempts:
                raise
            log.warning("load() failed (attempt %d of %d): %s: %s; retrying in 1 s",
                        attempt, attempts, type(exc).__name__, exc)
            time.sleep(1.0)


def load_model(paths: RuntimePaths, config: dict[str, Any], settings: ServingSettings, prefetch: Prefetch,
               timeline: Timeline, run_coroutine: RunCoroutine, mark: MarkStage | None = None) -> LoadedModel:
    """Import, construct and load the model; `mark` records its stages (default: the start-up
    timeline's, which a reload must leave as they were)."""
    mark = timeline.mark if mark is None else mark
    os.makedirs(paths.data_dir, exist_ok=True)
    # /app is on sys.path in the image (PYTHONPATH); a relocated app dir needs the same.
    for directory in (paths.app_dir, paths.packages_dir):
        if os.path.isdir(directory) and directory not in sys.path:
            sys.path.append(directory)
    secrets = Secrets(settings.secret_names, paths.secrets_dir)
    resolver = LazyDataResolver(prefetch, timeline)

    module = import_model_module(paths, settings)
    mark("import_end")
    model_class = getattr(module, settings.model_class_name, None)
    if not isinstance(model_class, type):
        raise LoadFailed(f"{module.__file__} defines no class {settings.model_class_name!r} "
                         f"(config model_class_name)")
    environment = read_environment(paths)
    available = {"config": config, "data_dir": Path(paths.data_dir), "secrets": secrets,
                 "lazy_data_resolver": resolver, "environment": environment}
    kwargs = init_kwargs(model_class, available)
    if prefetch.active and "lazy_data_resolver" not in kwargs and not settings.weights_before_load:
        log.warning("%s.__init__ cannot receive lazy_data_resolver (neither named nor **kwargs); "
                    "a model with model_cache weights cannot pass its load", settings.model_class_name)
    instance = model_class(**kwargs)
    mark("init_end")

    spec = describe_model(instance)
    if spec.websocket is not None:
        prepare_websocket()  # its protocol package: a missing one fails the load, with the fix
    if spec.setup_environment is not None and environment is not None:
        call_maybe_async(spec.setup_environment, run_coroutine, environment)
    if settings.weights_before_load:
        resolver.block_until_download_complete()
    load = getattr(instance, "load", None)
    if callable(load):
        load_with_retries(load, run_coroutine)
    resolver.raise_if_not_collected()
    mark("load_end")
    prefetch.boost()  # files the model has not waited for yet (other folders) now go full speed
    return LoadedModel(instance, spec, str(module.__file__), resolver, environment)

