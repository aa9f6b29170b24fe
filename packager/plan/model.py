"""The build plan: every decision a render needs, made once, as frozen data.

A plan is a pure function of (validated config, truss directory contents, pinned weights
manifest, build options). The renderer projects it into files and never decides anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packager.runtime.manifest import Manifest

WEIGHTS_NONE, WEIGHTS_BAKE, WEIGHTS_VOLUME = "none", "bake", "volume"


@dataclass(frozen=True)
class BuildOptions:
    """Choices made on the command line, not in config.yaml (which stays Truss-compatible)."""

    base_image: str | None = None  # overrides the default (not a config base_image)
    ca_bundle: str | None = None  # host path of an extra CA bundle to trust inside builds
    build_commands_after_code: bool = False  # for commands that need the model code
    pip_index_url: str | None = None
    large_file_bytes: int = 64 * 1024 * 1024  # baked files at least this big get a layer each


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
    weights_mode: str  # WEIGHTS_NONE | WEIGHTS_BAKE | WEIGHTS_VOLUME
    manifest: Manifest
    build_commands_before_code: tuple[BuildCommand, ...]
    build_commands_after_code: tuple[BuildCommand, ...]
    build_secret_names: tuple[str, ...]
    external_data: tuple[ExternalFile, ...]
    docker_server: DockerServerPlan | None
    data_dir: str | None  # truss-relative, None when absent
    model_dir: str | None
    package_dirs: tuple[str, ...]  # absolute host paths whose contents merge into /packages
    options: BuildOptions
    runtime_pip_packages: tuple[str, ...]  # what the in-image runtime itself needs
    notes: tuple[str, ...] = field(default=())  # decisions worth telling the user
