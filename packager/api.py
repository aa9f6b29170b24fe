"""The verbs the CLI and Chains call; the only module (with cli/) that crosses stages."""

from __future__ import annotations

import os
from pathlib import Path

from .builder import BuildResult, build_image
from .config import LoadedConfig, load_config
from .engine import ProgressCallback
from .plan.build import plan_build
from .plan.lock import Lock, ensure_lock
from .plan.model import BuildOptions, BuildPlan
from .plan.sources import Credentials
from .render import RenderedContext, render_context


def check(truss_dir: str | os.PathLike, *, allow_unknown_keys: bool = False) -> LoadedConfig:
    return load_config(truss_dir, allow_unknown_keys=allow_unknown_keys)


def lock(truss_dir: str | os.PathLike, *, credentials: Credentials | None = None,
         allow_unknown_keys: bool = False) -> tuple[LoadedConfig, Lock]:
    """Resolve every weight source again and rewrite pack.lock."""
    loaded = load_config(truss_dir, allow_unknown_keys=allow_unknown_keys)
    return loaded, ensure_lock(loaded, credentials, refresh=True)


def plan(truss_dir: str | os.PathLike, options: BuildOptions | None = None, *, locked: bool = False,
         credentials: Credentials | None = None, allow_unknown_keys: bool = False) -> tuple[LoadedConfig, BuildPlan]:
    """Config -> plan; resolves weights only when pack.lock is missing or stale (unless locked)."""
    loaded = load_config(truss_dir, allow_unknown_keys=allow_unknown_keys)
    current = ensure_lock(loaded, credentials, locked=locked)
    return loaded, plan_build(loaded, current.manifest, options)


def render(truss_dir: str | os.PathLike, out: str | os.PathLike, options: BuildOptions | None = None, *,
           locked: bool = False, credentials: Credentials | None = None,
           allow_unknown_keys: bool = False) -> tuple[BuildPlan, RenderedContext]:
    loaded, build_plan = plan(truss_dir, options, locked=locked, credentials=credentials,
                              allow_unknown_keys=allow_unknown_keys)
    return build_plan, render_context(loaded, build_plan, Path(out))


def build(truss_dir: str | os.PathLike, options: BuildOptions | None = None, *, locked: bool = False,
          tag: str | None = None, no_cache: bool = False, build_args: dict[str, str] | None = None,
          platform: str | None = None, progress: ProgressCallback | None = None,
          credentials: Credentials | None = None, allow_unknown_keys: bool = False) -> BuildResult:
    """Config -> plan -> context -> image."""
    loaded, build_plan = plan(truss_dir, options, locked=locked, credentials=credentials,
                              allow_unknown_keys=allow_unknown_keys)
    return build_image(loaded, build_plan, tag=tag, no_cache=no_cache, build_args=build_args,
                       platform=platform, progress=progress, credentials=credentials)
