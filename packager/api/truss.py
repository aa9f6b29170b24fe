"""The verbs of one truss: check, config, init, lock, plan, render, build, push, run (predict:
predictions.py, fetch: weights.py). Every `pack` command is one call here; the CLI only parses and
prints."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import runner
from ..builder import BuildRecord, BuildResult, base_image_facts, build_image, read_record, write_record
from ..config import LoadedConfig, load_config
from ..config.json_schema import config_json_schema
from ..engine import Engine, LayerCache, ProgressCallback, RegistryLogin, open_engine
from ..plan.base_image import base_image_ref
from ..plan.build import plan_build, server_packages
from ..plan.lock import Lock, ensure_lock, lock_path
from ..plan.model import BuildOptions, BuildPlan
from ..plan.sources import Credentials
from ..plan.truss_server_packages import ServerPackages
from ..render import RenderedContext, render_context
from ..registry import PushedImage, build_logins
from ..registry import push as push_image
from ..render.scaffold import init_truss
from .target import Target, resolve_target

# A truss argument: a truss directory, a config file, a ModelBase .py file, or a resolved Target.
# `config` (--config) names another config file to use in place of DIR/config.yaml.
TrussArg = str | os.PathLike[str] | Target


def resolve(truss_dir: TrussArg, *, config: str | os.PathLike[str] | None = None) -> Target:
    """Resolve a truss argument once (a ModelBase file's truss is generated here)."""
    return resolve_target(truss_dir, config)


def check(truss_dir: TrussArg, *, allow_unknown_keys: bool = False,
          config: str | os.PathLike[str] | None = None) -> LoadedConfig:
    return resolve_target(truss_dir, config).load(allow_unknown_keys=allow_unknown_keys)


def truss_server_packages(loaded: LoadedConfig) -> ServerPackages:
    """Truss's server packages the truss's own code imports (a static scan, nothing executed) and
    its requirements leave out: what its image gets beyond the requirements (`pack check`)."""
    return server_packages(loaded)


def lock(truss_dir: TrussArg, *, credentials: Credentials | None = None,
         allow_unknown_keys: bool = False, config: str | os.PathLike[str] | None = None) -> tuple[LoadedConfig, Lock]:
    """Resolve every weight source again and rewrite pack.lock (or the lock of --config's file)."""
    loaded = resolve_target(truss_dir, config).load(allow_unknown_keys=allow_unknown_keys)
    return loaded, ensure_lock(loaded, credentials, refresh=True)


def plan(truss_dir: TrussArg, options: BuildOptions | None = None, *, locked: bool = False,
         credentials: Credentials | None = None, allow_unknown_keys: bool = False,
         engine: Engine | None = None, config: str | os.PathLike[str] | None = None) -> tuple[LoadedConfig, BuildPlan]:
    """Config -> plan; resolves weights only when pack.lock is missing or stale (unless locked).
    With an engine, the base image's USER is read from it first (pulled when missing); without
    one (render) the plan assumes root and says so for a base that is not pack's default."""
    loaded = resolve_target(truss_dir, config).load(allow_unknown_keys=allow_unknown_keys)
    return loaded, _plan_loaded(loaded, options, locked=locked, credentials=credentials, engine=engine)


def _plan_loaded(loaded: LoadedConfig, options: BuildOptions | None, *, locked: bool,
                 credentials: Credentials | None, engine: Engine | None) -> BuildPlan:
    current = ensure_lock(loaded, credentials, locked=locked)
    facts = None
    if engine is not None:
        facts = base_image_facts(engine, base_image_ref(loaded.config, options or BuildOptions()))
    return plan_build(loaded, current.manifest, options, facts)


def render(truss_dir: TrussArg, out: str | os.PathLike[str], options: BuildOptions | None = None, *,
           locked: bool = False, credentials: Credentials | None = None,
           allow_unknown_keys: bool = False,
           config: str | os.PathLike[str] | None = None) -> tuple[BuildPlan, RenderedContext]:
    loaded, build_plan = plan(truss_dir, options, locked=locked, credentials=credentials,
                              allow_unknown_keys=allow_unknown_keys, config=config)
    return build_plan, render_context(build_plan, Path(out))


def build(truss_dir: TrussArg, options: BuildOptions | None = None, *, locked: bool = False,
          tag: str | None = None, no_cache: bool = False, build_args: dict[str, str] | None = None,
          platform: str | None = None, progress: ProgressCallback | None = None,
          credentials: Credentials | None = None, allow_unknown_keys: bool = False,
          engine: Engine | None = None, config: str | os.PathLike[str] | None = None,
          cache: LayerCache | None = None, username: str | None = None,
          password: str | None = None) -> BuildResult:
    """Config -> plan -> context -> image (with the machine's engine unless one is given).
    What the build used is recorded in pack's cache for `pack run` (see last_build). cache: the
    layer cache to import (a fresh CI runner: --cache-from the last pushed image) and to write
    (default: inline metadata in the image, so a pushed image is the next build's cache).
    username/password: a login for the registries of the cache references (default: the docker
    config's credentials)."""
    target = resolve_target(truss_dir, config)
    loaded = target.load(allow_unknown_keys=allow_unknown_keys)  # config errors before engine errors
    engine = engine or open_engine()
    build_plan = _plan_loaded(loaded, options, locked=locked, credentials=credentials, engine=engine)
    result = build_image(build_plan, tag=tag, no_cache=no_cache, build_args=build_args,
                         platform=platform, progress=progress, credentials=credentials, engine=engine,
                         cache=cache, logins=_cache_logins(cache, username, password))
    if not build_plan.dev:  # a dev image (pack watch) is not what `pack run` reuses the base of
        write_record(target.key, BuildRecord(str(target.key), (options or BuildOptions()).base_image,
                                             result.image.id, result.tag))
    return result


def _cache_logins(cache: LayerCache | None, username: str | None, password: str | None) -> tuple[RegistryLogin, ...]:
    if cache is None:
        return ()
    refs = (*cache.sources, *([cache.export_ref] if cache.export_ref else []))
    return build_logins(refs, username=username, password=password)


def last_build(truss_dir: TrussArg, *, config: str | os.PathLike[str] | None = None) -> BuildRecord | None:
    """What the last build of this truss (and config file) used, if it was built here."""
    return read_record(resolve_target(truss_dir, config).key)


def config_document(truss_dir: TrussArg, *, allow_unknown_keys: bool = False,
                    config: str | os.PathLike[str] | None = None) -> tuple[LoadedConfig, dict[str, Any]]:
    """The resolved config (every default filled in), as Truss writes it into images."""
    loaded = check(truss_dir, allow_unknown_keys=allow_unknown_keys, config=config)
    return loaded, loaded.resolved()


def schema() -> dict[str, Any]:
    """The JSON schema of config.yaml (editor completion and validation)."""
    return config_json_schema()


def init(truss_dir: str | os.PathLike[str], model_name: str | None = None) -> LoadedConfig:
    """Create a new truss that passes `check`; returns its loaded config."""
    init_truss(Path(truss_dir), model_name)
    return load_config(truss_dir)


def lock_file(loaded: LoadedConfig) -> Path:
    """Where the weights of this config are pinned (pack.lock, or <config>.pack.lock)."""
    return lock_path(loaded)


def push(truss_dir: TrussArg, options: BuildOptions | None = None, *, image_ref: str,
         username: str | None = None, password: str | None = None, locked: bool = False,
         progress: ProgressCallback | None = None, config: str | os.PathLike[str] | None = None,
         engine: Engine | None = None, cache: LayerCache | None = None) -> tuple[BuildResult, PushedImage]:
    """Build the truss (the layer cache makes an unchanged one instant) and push the image to
    `image_ref`; the registry's digest comes back in PushedImage. The pushed image carries the
    inline layer cache unless `cache` says otherwise (LayerCache(inline=False))."""
    engine = engine or open_engine()
    result = build(truss_dir, options, locked=locked, progress=progress, config=config, engine=engine,
                   cache=cache, username=username, password=password)
    return result, push_image(result.image.id, image_ref, engine=engine, username=username, password=password)


def run_options(target: Target, options: BuildOptions | None) -> tuple[BuildOptions, str | None]:
    """The options a run builds with: without --base-image, the base image the last build of
    this truss was given (an offline machine cannot pull the default). Returns (options, the
    reused base image or None)."""
    options = options or BuildOptions()
    if options.base_image is not None:
        return options, None
    record = read_record(target.key)
    if record is None or not record.base_image:
        return options, None
    return replace(options, base_image=record.base_image), record.base_image


@dataclass(frozen=True)
class RunResult:
    build: BuildResult
    running: runner.Running


def run(truss_dir: TrussArg, options: BuildOptions | None = None, *, locked: bool = False, port: int = 8080,
        secrets_dir: str | os.PathLike[str] | None = None, secrets: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None, name: str | None = None, timeout: float = 900.0,
        cpu: bool = False, cache_volume: str | None = None, progress: ProgressCallback | None = None,
        on_output: Callable[[str], None] | None = None, config: str | os.PathLike[str] | None = None,
        engine: Engine | None = None) -> RunResult:
    """Build the truss and run it on the host network until its readiness route answers.

    secrets_dir: a directory of secret files; secrets: values resolved on this host
    (host_secrets); both are mounted read-only at /secrets/<name>. Options come as given (see
    run_options for reusing the last build's base image). on_output gets the container's output
    line by line from its start (`pack run` in the foreground; see containers.attach).
    Interrupted before the model is ready, the container is stopped and removed."""
    engine = engine or open_engine()
    result = build(truss_dir, options, locked=locked, progress=progress, config=config, engine=engine)
    with runner.secrets_mount(secrets_dir, dict(secrets or {})) as mount:
        running = runner.start(result.image.id, result.plan, port=port, secrets_dir=mount, env=dict(env or {}),
                               name=name or runner.default_container_name(result.plan), timeout=timeout,
                               engine=engine, cpu=cpu, cache_volume=cache_volume, on_output=on_output)
    return RunResult(result, running)


def host_secrets(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Values for `pack run --secret NAME`, read on this host the way the plan reads credentials
    (PACK_SECRETS_DIR/NAME, then TRUSS_SECRET_NAME; HF tokens also HF_TOKEN), passed verbatim."""
    return runner.host_secrets(names)
