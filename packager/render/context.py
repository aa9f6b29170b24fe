"""The plan projected into template variables and the list of files a context holds. No I/O.

Everything the Dockerfile says comes from here; the templates only order the layers.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from packager import __version__
from packager.constants import PACK_CACHE_DIR, PACK_MANIFEST
from packager.plan.model import WEIGHTS_BAKE, WEIGHTS_VOLUME, BuildCommand, BuildPlan
from packager.runtime.manifest import IMAGE_MANIFEST_PATH, Manifest

CONTEXT_PACK_DIR = "pack"  # pack's own files inside the context (runtime, requirements, manifests)
CA_BUNDLE_IMAGE_PATH = "/etc/pack/ca-bundle.pem"
WEIGHTS_CACHE_MOUNT = "/var/cache/pack-weights"  # BuildKit cache mount for bake downloads
RUNTIME_CACHE_DIR = "/var/lib/pack/cache"  # declared volume: content cache shared on a node
BUILD_SECRETS_DIR = "/run/secrets"


@dataclass(frozen=True)
class WeightsStage:
    name: str
    manifest_file: str  # context path
    secret_names: tuple[str, ...]
    destinations: tuple[str, ...]
    total_bytes: int
    pip_packages: tuple[str, ...]  # what the downloader needs beyond the standard library


def bake_stages(plan: BuildPlan) -> list[WeightsStage]:
    """Large files one stage (and one final layer) each; small files share one stage.

    Separate stages are independent BuildKit vertices: they download in parallel, and a changed
    file re-runs only its own stage.
    """
    if plan.weights_mode != WEIGHTS_BAKE:
        return []
    large = [e for e in plan.manifest.entries if e.size >= plan.options.large_file_bytes]
    small = [e for e in plan.manifest.entries if e.size < plan.options.large_file_bytes]
    groups = [[e] for e in large] + ([small] if small else [])
    stages = []
    for i, group in enumerate(groups):
        stages.append(WeightsStage(
            name=f"pack-weights-{i}",
            manifest_file=f"{CONTEXT_PACK_DIR}/weights/stage-{i}.json",
            secret_names=tuple(sorted({e.secret_name for e in group if e.secret_name})),
            destinations=tuple(e.destination for e in group),
            total_bytes=sum(e.size for e in group),
            # S3 goes through boto3; HF, HTTPS and GCS use the downloader's own HTTP client.
            pip_packages=("boto3",) if any(e.source.kind == "s3" for e in group) else (),
        ))
    return stages


def stage_manifest(plan: BuildPlan, stage: WeightsStage) -> str:
    wanted = set(stage.destinations)
    return Manifest(tuple(e for e in plan.manifest.entries if e.destination in wanted),
                    generator=plan.manifest.generator).to_json()


def hf_refs(plan: BuildPlan) -> list[tuple[str, str]]:
    """(refs file path, commit sha) for baked HF repos, so from_pretrained(repo, revision=...)
    resolves offline exactly as from the hub cache."""
    refs: dict[str, str] = {}
    for e in plan.manifest.entries:
        if e.source.kind != "hf" or "/snapshots/" not in e.destination:
            continue
        repo_dir = e.destination.split("/snapshots/", 1)[0]
        name = e.revision.requested or "main"
        refs[posixpath.join(repo_dir, "refs", name)] = e.revision.resolved
    return sorted(refs.items())


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
        "dev.pack.weights-mode": plan.weights_mode,
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
        "weights_stages": stages,
        "weights_cache_mount": WEIGHTS_CACHE_MOUNT,
        "build_secrets_dir": BUILD_SECRETS_DIR,
        "hf_refs": hf_refs(plan),
        "volume_mode": plan.weights_mode == WEIGHTS_VOLUME,
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
        "labels": sorted(labels.items()),
        "entrypoint": [plan.base.python, "-m", "packager.runtime.entrypoint"],
    }
