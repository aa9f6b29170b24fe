"""The plan projected into one typed, frozen template context and the files a context holds.
No I/O, no decision: every value is the plan's, placed where the context and the image keep it.

Everything the Dockerfile says comes from here; the templates only order the layers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace

from packager import __version__
from packager.constants import LABEL_MODEL_NAME, PACK_CACHE_DIR, PACK_MANIFEST, PACKAGES_DIR
from packager.plan.model import BuildCommand, BuildPlan
from packager.runtime import modules
from packager.runtime.manifest import IMAGE_MANIFEST_PATH, Manifest

CONTEXT_PACK_DIR = "pack"  # pack's own files inside the context (runtime, requirements, manifests)
TRUSS_SERVER_DIR = "truss-server"  # under CONTEXT_PACK_DIR: Truss's server packages the code imports
# Under CONTEXT_PACK_DIR: the downloader alone (fetcher_files.py), what the download stages copy.
FETCHER_DIR = "fetcher"
DEV_RUNTIME_DIR = f"{CONTEXT_PACK_DIR}/dev"  # packager/runtime/dev, in dev contexts only
DEV_RUNTIME_IMAGE_PATH = "/app/packager/runtime/dev"
# What a patch of a running dev container replaces: files of these trees, and config.yaml in /app.
# Files are replaced atomically (a new file renamed over the old one), so the server's user needs
# the directories, not the files: handing it the files would copy every byte of them (data/
# included) into the dev layer.
DEV_WRITABLE_TREES = ("/app/model", "/app/data", "/app/.pack", PACKAGES_DIR)
DEV_WRITABLE_PATHS = ("/app", "/app/config.yaml")
CA_BUNDLE_IMAGE_PATH = "/etc/pack/ca-bundle.pem"
WEIGHTS_CACHE_MOUNT = "/var/cache/pack-weights"  # BuildKit cache mount for bake downloads
RUNTIME_CACHE_DIR = "/var/lib/pack/cache"  # declared volume: content cache shared on a node
BUILD_SECRETS_DIR = "/run/secrets"
# Where pack's build steps keep the files they install from (server requirements, the user's
# requirements, the weights downloader): the commands that use pack's cache mounts name it.
IMAGE_PACK_FILES = "/opt/pack"
# The package installer (templates/installer/install.sh.j2) and the uv it runs: a context directory
# bound into the requirement steps, so neither is ever a file of the image.
INSTALLER_DIR = f"{CONTEXT_PACK_DIR}/installer"
INSTALLER_MOUNT = "/opt/pack-installer"
INSTALLER_COMMAND = f"sh {INSTALLER_MOUNT}/install"


@dataclass(frozen=True)
class CacheMount:
    """A BuildKit cache mount of pack's RUN steps. BuildKit lists its entry as `cached mount
    <target> from exec <the command that first used it>`, without the id (builder.cache_mounts
    recognises pack's entries from that)."""

    id: str
    target: str
    sharing: str | None = None

    @property
    def flag(self) -> str:
        return f"--mount=type=cache,id={self.id},target={self.target}" + (f",sharing={self.sharing}"
                                                                         if self.sharing else "")


PIP_CACHE = CacheMount("pack-pip", "/root/.cache/pip")
UV_CACHE = CacheMount("pack-uv", "/root/.cache/uv")
APT_LISTS_CACHE = CacheMount("pack-apt-lists", "/var/lib/apt/lists", "locked")
APT_ARCHIVES_CACHE = CacheMount("pack-apt-archives", "/var/cache/apt/archives", "locked")
WEIGHTS_CACHE = CacheMount("pack-weights", WEIGHTS_CACHE_MOUNT, "shared")
CACHE_MOUNTS = (PIP_CACHE, UV_CACHE, APT_LISTS_CACHE, APT_ARCHIVES_CACHE, WEIGHTS_CACHE)
INSTALLER_MOUNTS = " ".join((PIP_CACHE.flag, UV_CACHE.flag,
                             f"--mount=type=bind,source={INSTALLER_DIR},target={INSTALLER_MOUNT}"))
APT_INSTALL = "apt-get update && apt-get install -y --no-install-recommends"  # system_packages' command


WEIGHTS_STAGE_ROOT = "/opt/pack-weights"  # where a download stage writes: COPY --from=stage <root>/ /
EXTERNAL_DATA_ROOT = "/opt/pack-data"  # where the external_data stage writes: COPY --from=... <root>/ /app/data/
EXTERNAL_DATA_FILE = f"{CONTEXT_PACK_DIR}/external-data.json"
WEIGHTS_LINKS_FILE = f"{CONTEXT_PACK_DIR}/weights/links.tar"  # HF snapshot symlinks and refs (ADD)


@dataclass(frozen=True)
class WeightsStage:
    """One baked weight layer as the templates see it."""

    name: str
    manifest_file: str  # context path
    secret_names: tuple[str, ...]
    files: int
    total_bytes: int
    pip_packages: tuple[str, ...]  # what the downloader needs beyond the standard library


def bake_stages(plan: BuildPlan) -> list[WeightsStage]:
    """The plan's weight layers (packager.plan.weight_layers), one download stage each."""
    return [
        WeightsStage(
            name=layer.name,
            manifest_file=f"{CONTEXT_PACK_DIR}/weights/{layer.name}.json",
            secret_names=layer.secret_names,
            files=layer.files,
            total_bytes=layer.bytes,
            pip_packages=layer.pip_packages,
        )
        for layer in plan.weight_layers.layers
    ]


def stage_manifests(plan: BuildPlan) -> dict[str, str]:
    """Context path -> manifest text of each download stage: the layer's entries placed under
    the stage's output root, so the final image takes the whole root with one COPY."""
    manifests = {}
    for stage, layer in zip(bake_stages(plan), plan.weight_layers.layers, strict=True):
        entries = tuple(replace(e, destination=WEIGHTS_STAGE_ROOT + e.destination) for e in layer.entries)
        manifests[stage.manifest_file] = Manifest(entries, generator=plan.manifest.generator).to_json()
    return manifests


@dataclass(frozen=True)
class RunStep:
    """A build_commands line: its secret mounts (BuildKit, never ENV or ARG) and the command."""

    command: str
    mounts: tuple[str, ...]


@dataclass(frozen=True)
class DockerfileContext:
    """Every value Dockerfile.j2 and its partials substitute (StrictUndefined: no other name)."""

    pack_version: str
    model_name: str
    pack_dir: str
    fetcher_dir: str
    base_image: str
    base_check: str
    python: str
    labels: tuple[tuple[str, str], ...]
    ca_bundle: bool
    ca_bundle_path: str
    pip_index_url: str | None
    system_packages: tuple[str, ...]
    server_requirements: bool
    truss_server_dir: str | None
    requirements_kind: str
    weights_stages: tuple[WeightsStage, ...]
    weights_stage_root: str
    weights_links: str | None
    weights_cache_mount: str
    pip_cache: str
    install_mounts: str  # a requirement step's mounts: pip's and uv's caches, the installer
    install: str  # `pip install`, as the installer runs it (uv, else pip)
    apt_lists_cache: str
    apt_archives_cache: str
    weights_cache: str
    apt_install: str
    build_secrets_dir: str
    external_data: bool
    external_data_file: str
    external_data_root: str
    external_data_module: str
    transfer_module: str
    transfer_cli_module: str
    volume_mode: bool
    manifest_path: str
    manifest_env: str
    cache_env: str
    runtime_cache_dir: str
    commands_before_code: tuple[RunStep, ...]
    commands_after_code: tuple[RunStep, ...]
    has_data: bool
    has_model: bool
    has_packages: bool
    port: int
    run_as_user_id: int | None
    runtime_user: str | None
    restore_user: str | None
    user_dirs: tuple[str, ...]
    hf_cache_for_user: str | None
    image_env: tuple[tuple[str, str], ...]
    entrypoint: tuple[str, ...]
    dev_runtime: str | None  # context dir of the reload control (dev images only)
    dev_runtime_path: str
    dev_user: str | None  # the server's user in a dev image, when not root
    dev_writable_trees: tuple[str, ...]
    dev_writable_paths: tuple[str, ...]

    def variables(self) -> dict[str, object]:
        """The template variables (one level: nested values stay objects for the templates)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _steps(commands: tuple[BuildCommand, ...]) -> tuple[RunStep, ...]:
    return tuple(RunStep(c.command, tuple(f"--mount=type=secret,id={name},target={target},required=true"
                                          for name, target in c.secrets)) for c in commands)


def external_data_items(plan: BuildPlan) -> str:
    """The external_data stage's input: what to fetch, where under /app/data, and its digest."""
    return json.dumps([{"url": f.url, "local_data_path": f.local_data_path, "sha256": f.sha256}
                       for f in plan.external_data], indent=2) + "\n"


def template_context(plan: BuildPlan) -> DockerfileContext:
    server = plan.docker_server
    labels = {
        "dev.pack.version": __version__,
        LABEL_MODEL_NAME: plan.model_name,
        "dev.pack.config-digest": plan.config_digest,
        "dev.pack.weights-mode": plan.weights_mode.value,
        "dev.pack.weights-manifest-sha256": plan.manifest.sha256(),
        "dev.pack.weights-bytes": str(plan.manifest.total_bytes),
    }
    prefetch = plan.prefetch_manifest is not None
    return DockerfileContext(
        pack_version=__version__,
        model_name=plan.model_name,
        pack_dir=CONTEXT_PACK_DIR,
        fetcher_dir=f"{CONTEXT_PACK_DIR}/{FETCHER_DIR}",
        base_image=plan.base.image,
        base_check=plan.base.check_command,
        python=plan.base.python,
        labels=tuple(sorted(labels.items())),
        ca_bundle=plan.sources.ca_bundle is not None,
        ca_bundle_path=CA_BUNDLE_IMAGE_PATH,
        pip_index_url=plan.options.pip_index_url,
        system_packages=plan.system_packages,
        server_requirements=bool(plan.sources.server_requirements),
        truss_server_dir=TRUSS_SERVER_DIR if plan.server_packages.packages and server is None else None,
        requirements_kind=plan.requirements.kind,
        weights_stages=tuple(bake_stages(plan)),
        weights_stage_root=WEIGHTS_STAGE_ROOT,
        weights_links=WEIGHTS_LINKS_FILE if plan.weight_layers.links or plan.weight_layers.refs else None,
        weights_cache_mount=WEIGHTS_CACHE_MOUNT,
        pip_cache=PIP_CACHE.flag,
        install_mounts=INSTALLER_MOUNTS,
        install=INSTALLER_COMMAND,
        apt_lists_cache=APT_LISTS_CACHE.flag,
        apt_archives_cache=APT_ARCHIVES_CACHE.flag,
        weights_cache=WEIGHTS_CACHE.flag,
        apt_install=APT_INSTALL,
        build_secrets_dir=BUILD_SECRETS_DIR,
        external_data=bool(plan.external_data),
        external_data_file=EXTERNAL_DATA_FILE,
        external_data_root=EXTERNAL_DATA_ROOT,
        external_data_module=modules.EXTERNAL_DATA,
        transfer_module=modules.TRANSFER,
        transfer_cli_module=modules.TRANSFER_CLI,
        volume_mode=prefetch,
        manifest_path=IMAGE_MANIFEST_PATH,
        manifest_env=PACK_MANIFEST,
        cache_env=PACK_CACHE_DIR,
        runtime_cache_dir=RUNTIME_CACHE_DIR,
        commands_before_code=_steps(plan.build_commands_before_code),
        commands_after_code=_steps(plan.build_commands_after_code),
        has_data=plan.sources.data_dir is not None,
        has_model=plan.sources.model_dir is not None,
        has_packages=bool(plan.sources.package_dirs),
        port=server.proxy_port if server else 8080,
        run_as_user_id=server.run_as_user_id if server else None,
        # pack's steps run as root; the server as plan.runtime_user (None: root).
        runtime_user=plan.runtime_user,
        restore_user=plan.runtime_user if not (server and server.run_as_user_id) else None,
        user_dirs=(plan.writable_dirs + ((RUNTIME_CACHE_DIR,) if prefetch else ())) if plan.runtime_user else (),
        hf_cache_for_user=plan.hf_cache_for_user,
        image_env=plan.image_env,
        entrypoint=(plan.base.python, "-m", modules.ENTRYPOINT),
        dev_runtime=DEV_RUNTIME_DIR if plan.dev else None,
        dev_runtime_path=DEV_RUNTIME_IMAGE_PATH,
        dev_user=plan.runtime_user if plan.dev else None,
        dev_writable_trees=DEV_WRITABLE_TREES,
        dev_writable_paths=DEV_WRITABLE_PATHS,
    )
