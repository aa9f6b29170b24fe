"""The build plan: every decision a render needs, made once, as frozen data.

A plan is a pure function of (validated config, truss directory contents, pinned weights
manifest, build options). The renderer projects it into files and never decides anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from packager.runtime.manifest import Manifest

from .truss_server_packages import ServerPackages
from .weight_layers import DEFAULT_LARGE_FILE_BYTES, DEFAULT_MAX_LAYERS, WeightLayerPlan

if TYPE_CHECKING:
    from .context_sources import ContextSources


class WeightsMode(str, Enum):
    """Where a truss's weights come from in its image, decided once (plan.build.weights_mode)."""

    NONE = "none"  # no model_cache and no `weights:` sources
    BAKE = "bake"  # downloaded by the build into image layers
    VOLUME = "volume"  # fetched when the container starts (the prefetch), onto a cache volume

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class BuildOptions:
    """Choices made on the command line, not in config.yaml (which stays Truss-compatible)."""

    base_image: str | None = None  # overrides the default (not a config base_image)
    ca_bundle: str | None = None  # host path of an extra CA bundle to trust inside builds
    build_commands_after_code: bool = False  # for commands that need the model code
    pip_index_url: str | None = None
    large_file_bytes: int = DEFAULT_LARGE_FILE_BYTES  # baked files at least this big get a layer each
    max_weight_layers: int = DEFAULT_MAX_LAYERS  # bound on the image layers baked weights take
    bake_weights: bool = False  # `weights:` sources baked into the image instead of fetched at start
    # An image for `pack watch` (library only): the build image plus one last layer with the reload
    # control (packager/runtime/dev) and, for a non-root server, code directories it may patch.
    dev: bool = False


@dataclass(frozen=True)
class Requirements:
    """How user requirements get into the image: a requirements.txt the context carries, or a
    uv.lock exported during the build."""

    kind: str  # "none" | "list" | "pip" | "pyproject" | "uv_lock"
    lines: tuple[str, ...] = ()  # for list / pip / pyproject
    source_file: str | None = None  # truss-relative path (pip / uv_lock)


@dataclass(frozen=True)
class BaseImage:
    image: str
    python: str  # interpreter inside the image
    is_default: bool
    python_version: str  # "3.11"
    # The base image's own USER (docker's "user[:group]" text); None for root, or when the
    # engine could not tell (the plan's notes say so). pack's steps run as root; this user is
    # restored for the server.
    user: str | None = None
    cuda: bool = False  # pack's default CUDA runtime base, chosen for an accelerator
    check_command: str = ""  # the build's first step: fail fast on a base pack cannot build on


@dataclass(frozen=True)
class BaseImageFacts:
    """What the engine says about a base image, learnt before planning so the plan stays pure."""

    image: str
    user: str | None  # Config.User as the engine reports it ("" is root); None: could not tell
    detail: str = ""  # why it could not tell (not local and not pullable, ...)
    layers: int | None = None  # its filesystem layers; None: unknown


@dataclass(frozen=True)
class Accelerator:
    """resources.accelerator: what `pack run` asks the engine for."""

    kind: str  # "H100"
    count: int  # 1 when written without a count ("H100" and "H100:1" are the same config)

    def __str__(self) -> str:
        return self.kind if self.count == 1 else f"{self.kind}:{self.count}"


@dataclass(frozen=True)
class BuildCommand:
    command: str
    secrets: tuple[tuple[str, str], ...]  # (secret name, mount target) mounted on this RUN


@dataclass(frozen=True)
class ExternalFile:
    url: str
    local_data_path: str
    sha256: str | None


@dataclass(frozen=True)
class DockerServerPlan:
    start_command: str | None
    server_port: int
    predict_endpoint: str
    readiness_endpoint: str
    liveness_endpoint: str
    run_as_user_id: int | None
    no_build: bool
    proxy_port: int  # where Truss's routes are served (8080 unless the server sits there)


@dataclass(frozen=True)
class BuildPlan:
    model_name: str
    config_digest: str
    base: BaseImage
    system_packages: tuple[str, ...]
    requirements: Requirements
    weights_mode: WeightsMode
    # VOLUME: the manifest the image carries for its prefetch; None when nothing is fetched at start.
    prefetch_manifest: Manifest | None
    manifest: Manifest
    build_commands_before_code: tuple[BuildCommand, ...]
    build_commands_after_code: tuple[BuildCommand, ...]
    build_secret_names: tuple[str, ...]
    external_data: tuple[ExternalFile, ...]
    docker_server: DockerServerPlan | None
    sources: ContextSources  # what the context is made of (directories, files, documents)
    options: BuildOptions
    weight_layers: WeightLayerPlan = field(default_factory=WeightLayerPlan)  # bake mode only
    # Truss's server packages the code imports and the truss does not require (own layer)
    server_packages: ServerPackages = field(default_factory=ServerPackages)
    notes: tuple[str, ...] = field(default=())  # decisions worth telling the user
    accelerator: Accelerator | None = None  # GPUs `pack run` requests
    # environment_variables baked as ENV (before build_commands): credential-looking or
    # unrepresentable entries stay in config.yaml only, set by the entrypoint at start.
    image_env: tuple[tuple[str, str], ...] = ()
    # Who the server runs as when not root: docker_server.run_as_user_id, else the base image's
    # USER. None = root.
    runtime_user: str | None = None
    writable_dirs: tuple[str, ...] = ()  # what the server writes at run time, owned by runtime_user
    hf_cache_for_user: str | None = None  # baked HF cache under /root, opened to runtime_user
    # A dev image (options.dev, Model-class trusses only: a docker_server truss has no in-process
    # model to reload): sources.dev_runtime is copied in as the last layer.
    dev: bool = False
