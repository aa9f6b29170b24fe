"""The verbs the CLI and Chains call; the only module (with cli/) that crosses stages."""

from __future__ import annotations

import os
from pathlib import Path

from .build_record import BuildRecord, read_record, write_record
from .builder import BuildResult, base_image_facts, build_image
from .config import LoadedConfig
from .engine import Engine, ProgressCallback, open_engine
from .plan.base_image import base_image_ref
from .plan.build import plan_build, server_packages
from .plan.lock import Lock, ensure_lock
from .plan.model import BuildOptions, BuildPlan
from .plan.sources import Credentials
from .plan.truss_server_packages import ServerPackages
from .render import RenderedContext, render_context
from .target import Target, resolve_target

# A truss argument: a truss directory, a config file, a ModelBase .py file, or a resolved Target.
# `config` (--config) names another config file to use in place of DIR/config.yaml.
TrussArg = str | os.PathLike | Target


def resolve(truss_dir: TrussArg, *, config: str | os.PathLike | None = None) -> Target:
    """Resolve a truss argument once (a ModelBase file's truss is generated here)."""
    return resolve_target(truss_dir, config)


def check(truss_dir: TrussArg, *, allow_unknown_keys: bool = False,
          config: str | os.PathLike | None = None) -> LoadedConfig:
    return resolve_target(truss_dir, config).load(allow_unknown_keys=allow_unknown_keys)


def truss_server_packages(loaded: LoadedConfig) -> ServerPackages:
    """Truss's server packages the truss's own code imports (a static scan, nothing executed) and
    its requirements leave out: what its image gets beyond the requirements (`pack check`)."""
    return server_packages(loaded)


def lock(truss_dir: TrussArg, *, credentials: Credentials | None = None,
         allow_unknown_keys: bool = False, config: str | os.PathLike | None = None) -> tuple[LoadedConfig, Lock]:
    """Resolve every weight source again and rewrite pack.lock (or the lock of --config's file)."""
    loaded = resolve_target(truss_dir, config).load(allow_unknown_keys=allow_unknown_keys)
    return loaded, ensure_lock(loaded, credentials, refresh=True)


def plan(truss_dir: TrussArg, options: BuildOptions | None = None, *, locked: bool = False,
         credentials: Credentials | None = None, allow_unknown_keys: bool = False,
         engine: Engine | None = None, config: str | os.PathLike | None = None) -> tuple[LoadedConfig, BuildPlan]:
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


def render(truss_dir: TrussArg, out: str | os.PathLike, options: BuildOptions | None = None, *,
           locked: bool = False, credentials: Credentials | None = None,
           allow_unknown_keys: bool = False,
           config: str | os.PathLike | None = None) -> tuple[BuildPlan, RenderedContext]:
    loaded, build_plan = plan(truss_dir, options, locked=locked, credentials=credentials,
                              allow_unknown_keys=allow_unknown_keys, config=config)
    return build_plan, render_context(loaded, build_plan, Path(out))


def build(truss_dir: TrussArg, options: BuildOptions | None = None, *, locked: bool = False,
          tag: str | None = None, no_cache: bool = False, build_args: dict[str, str] | None = None,
          platform: str | None = None, progress: ProgressCallback | None = None,
          credentials: Credentials | None = None, allow_unknown_keys: bool = False,
          engine: Engine | None = None, config: str | os.PathLike | None = None) -> BuildResult:
    """Config -> plan -> context -> image (with the machine's engine unless one is given).
    What the build used is recorded in pack's cache for `pack run` (see last_build)."""
    target = resolve_target(truss_dir, config)
    loaded = target.load(allow_unknown_keys=allow_unknown_keys)  # config errors before engine errors
    engine = engine or open_engine()
    build_plan = _plan_loaded(loaded, options, locked=locked, credentials=credentials, engine=engine)
    result = build_image(loaded, build_plan, tag=tag, no_cache=no_cache, build_args=build_args,
                         platform=platform, progress=progress, credentials=credentials, engine=engine)
    write_record(target.key, BuildRecord(str(target.key), (options or BuildOptions()).base_image,
                                         result.image.id, result.tag))
    return result


def last_build(truss_dir: TrussArg, *, config: str | os.PathLike | None = None) -> BuildRecord | None:
    """What the last build of this truss (and config file) used, if it was built here."""
    return read_record(resolve_target(truss_dir, config).key)
