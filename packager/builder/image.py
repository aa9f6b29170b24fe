"""Stage 4: plan -> rendered context -> image, with the engine the machine has.

Contexts are rendered under the user's cache directory, keyed by truss, so a rebuild reuses the
same directory and the engine's cache sees unchanged files as unchanged.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..cache_dirs import cache_root
from ..config import CONFIG_FILENAME
from ..constants import AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, HF_ENDPOINT, STORAGE_EMULATOR_HOST
from .fetch_tally import FetchTally
from .labels import truss_labels
from .provenance import git_facts, provenance_labels
from .secrets import secret_files
from ..engine import BuildRequest, BuiltImage, Engine, LayerCache, ProgressCallback, RegistryLogin, open_engine
from ..errors import EngineError
from ..plan.model import BaseImageFacts, BuildPlan
from ..plan.sources import Credentials
from ..render import RenderedContext, render_context

# Endpoints (never credentials) the bake-mode download stages take as build args.
ENDPOINT_ARGS = (HF_ENDPOINT, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, STORAGE_EMULATOR_HOST)


@dataclass(frozen=True)
class BuildResult:
    image: BuiltImage
    tag: str
    context: RenderedContext
    plan: BuildPlan
    weight_bytes_fetched: int = 0  # by the bake-mode download steps that ran (0: all from a cache)
    weight_steps_run: int = 0  # download steps that ran rather than came from a cache
    labels: dict[str, str] = field(default_factory=dict)  # as given to the image config


def contexts_root() -> Path:
    return cache_root() / "contexts"


def context_dir_for(plan: BuildPlan) -> Path:
    """One context directory per truss (and config file), reused by every build of it."""
    truss_dir, config_file = Path(plan.sources.truss_dir), Path(plan.sources.config_file)
    key = hashlib.sha256(str(truss_dir).encode()).hexdigest()[:12]
    if config_file != truss_dir / CONFIG_FILENAME:
        # Another config file (--config) of the same truss builds in a context of its own.
        key = hashlib.sha256(f"{truss_dir}\0{config_file}".encode()).hexdigest()[:12]
    # A dev image's context apart: `pack watch` and `pack build` of one truss keep theirs unchanged.
    return contexts_root() / f"{_slug(truss_dir.name)}-{key}{'-dev' if plan.dev else ''}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.") or "model"


def default_tag(plan: BuildPlan, rendered: RenderedContext) -> str:
    """<model>:<context digest>; a dev image's tag says so, and never names a build image."""
    return f"{_slug(plan.model_name)}:{'dev-' if plan.dev else ''}{rendered.digest[:12]}"


def endpoint_build_args(plan: BuildPlan, env: dict[str, str] | None = None) -> dict[str, str]:
    if not plan.weight_layers.layers:  # only the bake-mode download stages reach the sources
        return {}
    env = dict(os.environ) if env is None else env
    return {name: env[name] for name in ENDPOINT_ARGS if env.get(name)}


def base_image_facts(engine: Engine, ref: str) -> BaseImageFacts:
    """What the plan needs to know about the base image (its USER), asked of the engine before
    planning. A base the engine does not have is pulled first, as the build would pull it
    anyway (and a USER cannot be known without its config); when the pull fails (offline, no
    credentials) the facts say why and the plan assumes root: the build then reports the base's
    own failure, or succeeds where its builder can reach what this engine could not."""
    image = engine.image(ref)
    if image is None:
        try:
            image = engine.pull(ref)
        except EngineError as exc:
            return BaseImageFacts(ref, None, f"not local, and the pull failed: {exc.message}")
    return BaseImageFacts(ref, image.user, layers=image.layers or None)


def build_image(
    plan: BuildPlan,
    *,
    tag: str | None = None,
    no_cache: bool = False,
    build_args: dict[str, str] | None = None,
    platform: str | None = None,
    progress: ProgressCallback | None = None,
    credentials: Credentials | None = None,
    engine: Engine | None = None,
    cache: LayerCache | None = None,
    logins: tuple[RegistryLogin, ...] = (),
) -> BuildResult:
    """cache: layer cache to import and to write (default: inline metadata, nothing imported);
    logins: for the registries that cache lives in (default: the docker config's)."""
    rendered = render_context(plan, context_dir_for(plan))
    engine = engine or open_engine()
    final_tag = tag or default_tag(plan, rendered)
    args = {**endpoint_build_args(plan), **(build_args or {})}
    labels = {**provenance_labels(plan, rendered.digest, git_facts(Path(plan.sources.truss_dir))),
              **truss_labels(plan)}
    tally = FetchTally()
    with secret_files(plan, credentials or Credentials.from_environment()) as secrets:
        request = BuildRequest(rendered.path, tag=final_tag, secrets=secrets, build_args=args,
                               no_cache=no_cache, platform=platform, labels=labels,
                               cache=cache if cache is not None else LayerCache(), logins=logins)
        image = engine.build(request, tally.watch(progress))
    return BuildResult(image=image, tag=final_tag, context=rendered, plan=plan,
                       weight_bytes_fetched=tally.downloaded_bytes, weight_steps_run=tally.steps, labels=labels)
