"""The plan projected into template variables and the list of files a context holds. No I/O.

Everything the Dockerfile says comes from here; the templates only order the layers.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace

from packager import __version__
from packager.constants import PACK_CACHE_DIR, PACK_MANIFEST
from packager.plan.model import BuildCommand, BuildPlan
from packager.runtime.manifest import IMAGE_MANIFEST_PATH, Manifest

CONTEXT_PACK_DIR = "pack"  # pack's own files inside the context (runtime, requirements, manifests)
TRUSS_SERVER_DIR = "truss-server"  # under CONTEXT_PACK_DIR: Truss's server packages the code imports
CA_BUNDLE_IMAGE_PATH = "/etc/pack/ca-bundle.pem"
WEIGHTS_CACHE_MOUNT = "/var/cache/pack-weights"  # BuildKit cache mount for bake downloads
RUNTIME_CACHE_DIR = "/var/lib/pack/cache"  # declared volume: content cache shared on a node
BUILD_SECRETS_DIR = "/run/secrets"


WEIGHTS_STAGE_ROOT = "/opt/pack-weights"  # where a download stage writes: COPY --from=stage <root>/ /
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


def _mounts(command: BuildCommand) -> list[str]:
    return [f"--mount=type=secret,id={name},target={target},required=true" for name, target in command.secrets]


def _commands(commands: tuple[BuildCommand, ...]) -> list[dict]:
    return [{"command": c.command, "mounts": _mounts(c)} for c in commands]


def template_context(plan: BuildPlan, *, has_server_requirements: bool) -> dict:
    server = plan.docker_server
    stages = bake_stages(plan)
    labels = {
        "dev.pack.version": __version__,
        "dev.pack.model-name": plan.model_name,
        "dev.pack.config-digest": plan.config_digest,
        "dev.pack.weights-mode": plan.weights_mode.value,
        "dev.pack.weights-manifest-sha256": plan.manifest.sha256(),
        "dev.pack.weights-bytes": str(plan.manifest.total_bytes),
    }
    return {
        "pack_version": __version__,
        "model_name": plan.model_name,
        "pack_dir": CONTEXT_PACK_DIR,
        "base_image": plan.base.image,
        "python": plan.base.python,
        "python_version": plan.base.python_version,
        "ca_bundle": plan.options.ca_bundle is not None,
        "ca_bundle_path": CA_BUNDLE_IMAGE_PATH,
        "pip_index_url": plan.options.pip_index_url,
        "system_packages": list(plan.system_packages),
        "requirements_kind": plan.requirements.kind,
        "server_requirements": has_server_requirements and server is None,
        "runtime_pip_packages": list(plan.runtime_pip_packages),
        "truss_server_dir": TRUSS_SERVER_DIR if plan.server_packages.packages and server is None else None,
        "weights_stages": stages,
        "weights_stage_root": WEIGHTS_STAGE_ROOT,
        "weights_links": WEIGHTS_LINKS_FILE if plan.weight_layers.links or plan.weight_layers.refs else None,
        "weights_cache_mount": WEIGHTS_CACHE_MOUNT,
        "build_secrets_dir": BUILD_SECRETS_DIR,
        "volume_mode": plan.prefetch_manifest is not None,
        "manifest_path": IMAGE_MANIFEST_PATH,
        "manifest_env": PACK_MANIFEST,
        "cache_env": PACK_CACHE_DIR,
        "runtime_cache_dir": RUNTIME_CACHE_DIR,
        "commands_before_code": _commands(plan.build_commands_before_code),
        "commands_after_code": _commands(plan.build_commands_after_code),
        "external_data": [{"url": f.url, "dest": posixpath.join("/app/data", f.local_data_path),
                           "sha256": f.sha256} for f in plan.external_data],
        "has_data": plan.data_dir is not None,
        "has_model": plan.model_dir is not None,
        "has_packages": bool(plan.package_dirs),
        "docker_server": server,
        "port": server.proxy_port if server else 8080,
        "run_as_user_id": server.run_as_user_id if server else None,
        # pack's steps run as root; the server as plan.runtime_user (None: root).
        "runtime_user": plan.runtime_user,
        "restore_user": plan.runtime_user if not (server and server.run_as_user_id) else None,
        "user_dirs": (list(plan.writable_dirs) + ([RUNTIME_CACHE_DIR] if plan.prefetch_manifest is not None else [])
                      if plan.runtime_user else []),
        "hf_cache_for_user": plan.hf_cache_for_user,
        "image_env": list(plan.image_env),
        "labels": sorted(labels.items()),
        "entrypoint": [plan.base.python, "-m", "packager.runtime.entrypoint"],
    }
