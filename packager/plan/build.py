"""Stage 2: validated config + pinned manifest -> BuildPlan. Decisions live here, not in templates."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from packager.config import LoadedConfig
from packager.errors import PlanError, UnsupportedError
from packager.runtime.manifest import Manifest
from packager.runtime.serving.tracing import SDK_REQUIREMENTS as TRACING_SDK_REQUIREMENTS
from packager.runtime.serving.websocket import REQUIREMENT as WEBSOCKET_REQUIREMENT

from .base_image import base_image_notes, plan_accelerator, plan_base_image
from .code_imports import scan as scan_imports
from .context_sources import plan_context_sources
from .model import (
    WeightsMode,
    BuildCommand,
    BuildOptions,
    BuildPlan,
    DockerServerPlan,
    BaseImageFacts,
    ExternalFile,
    Requirements,
)
from .image_env import plan_image_env
from .requirements import plan_requirements, required_distributions
from .run_as import plan_run_as
from .truss_server_packages import ServerPackages, pack_server_distributions, plan_server_packages
from .weight_layers import IMAGE_LAYER_BUDGET, WeightLayerPlan, plan_weight_layers, weight_layer_bound

TRUSS_PORT = 8080
# A build command that touches these paths needs the code copied first (truss-compat §4).
_NEEDS_CODE = re.compile(r"(/app|/packages)\b")


def config_digest(loaded: LoadedConfig) -> str:
    return hashlib.sha256(json.dumps(loaded.resolved(), sort_keys=True).encode()).hexdigest()


def _refuse_platform_only(loaded: LoadedConfig) -> list[str]:
    config = loaded.config
    for key in ("trt_llm", "bis_llm"):
        if getattr(config, key) is not None:
            raise UnsupportedError(
                f"{loaded.file}: `{key}` builds run on Baseten's engine builder; pack cannot build "
                "them locally",
                hint=f"deploy this truss with Baseten, or replace `{key}` with a model/model.py",
            )
    if config.runtime.remote_ssh.enabled:
        raise UnsupportedError(f"{loaded.file}: runtime.remote_ssh is a platform feature",
                               hint="set runtime.remote_ssh.enabled: false for local builds")
    notes = []
    for key in ("bdn", "training_checkpoints", "runtime.egress_restrictions"):
        if key in config.platform_features():
            notes.append(f"`{key}` is applied by the platform at deploy time; the image does not change")
    return notes


def _split_build_commands(
    loaded: LoadedConfig, options: BuildOptions
) -> tuple[tuple[BuildCommand, ...], tuple[BuildCommand, ...], list[str]]:
    config = loaded.config
    secrets = tuple(sorted(config.build.secret_to_path_mapping.items()))
    commands = [BuildCommand(c, secrets) for c in config.build_commands]
    if options.build_commands_after_code:
        return (), tuple(commands), ["build_commands run after the code is copied (--build-commands-after-code)"]
    split = next((i for i, c in enumerate(commands) if _NEEDS_CODE.search(c.command)), len(commands))
    notes = []
    if split < len(commands):
        notes.append(f"build_commands[{split}] mentions /app or /packages: it and the "
                     f"{len(commands) - split - 1} after it run after the code is copied, so code edits re-run them")
    return tuple(commands[:split]), tuple(commands[split:]), notes


def _docker_server(loaded: LoadedConfig) -> DockerServerPlan | None:
    server = loaded.config.docker_server
    if server is None:
        return None
    return DockerServerPlan(
        start_command=server.start_command, server_port=server.server_port,
        predict_endpoint=server.predict_endpoint, readiness_endpoint=server.readiness_endpoint,
        liveness_endpoint=server.liveness_endpoint, run_as_user_id=server.run_as_user_id,
        no_build=bool(server.no_build),
        proxy_port=TRUSS_PORT if server.server_port != TRUSS_PORT else TRUSS_PORT + 1,
    )


def _package_dirs(loaded: LoadedConfig) -> tuple[str, ...]:
    config, root = loaded.config, loaded.truss_dir
    dirs: list[Path] = []
    bundled = root / config.bundled_packages_dir
    if bundled.is_dir():
        dirs.append(bundled)
    for external in config.external_package_dirs:
        dirs.append(Path(external) if os.path.isabs(external) else root / external)
    seen: dict[str, Path] = {}
    for d in dirs:
        for child in sorted(d.iterdir()):
            if child.name.startswith(".") or child.name == "__pycache__":
                continue
            if child.name in seen:
                raise PlanError(
                    f"`{child.name}` exists in both {seen[child.name]} and {d}; both would land in /packages",
                    hint="rename one of them or drop one directory from external_package_dirs",
                )
            seen[child.name] = d
    return tuple(str(d.resolve()) for d in dirs)


def server_packages(loaded: LoadedConfig, requirements: Requirements | None = None) -> ServerPackages:
    """Truss's server packages the truss's own code imports and its requirements do not install
    (truss_server_packages); none for docker_server trusses, whose image Truss leaves alone."""
    config, root = loaded.config, loaded.truss_dir
    if config.docker_server is not None:
        return ServerPackages()
    requirements = requirements or plan_requirements(config, root)
    code_dirs = [root / config.model_module_dir, *(Path(d) for d in _package_dirs(loaded))]
    code = scan_imports(root, code_dirs, local_names={Path(config.model_module_dir).parts[0]})
    packages = plan_server_packages(code.sites, required_distributions(requirements, root),
                                    provided=pack_server_distributions())
    return ServerPackages(packages, code.unscanned)


def _runtime_packages(manifest: Manifest, tracing: bool, websocket: bool = False) -> tuple[str, ...]:
    """What the runtime imports for this truss only: the prefetch's cloud clients, the
    OpenTelemetry SDK when the model server traces (runtime.enable_tracing_data), and the
    WebSocket protocol when the model defines `websocket`."""
    kinds = {e.source.kind for e in manifest.entries}
    packages = []
    if "s3" in kinds:
        packages.append("boto3")
    if "gcs" in kinds:
        packages.append("google-cloud-storage")
    if tracing:
        packages += TRACING_SDK_REQUIREMENTS
    if websocket:
        packages.append(WEBSOCKET_REQUIREMENT)
    return tuple(packages)


def weights_mode(loaded: LoadedConfig, options: BuildOptions) -> WeightsMode:
    """model_cache entries choose with use_volume; `weights:` sources are fetched at start (as
    the platform mounts them) unless the build asks to bake them."""
    config = loaded.config
    if options.bake_weights and not config.weights:
        raise PlanError("--bake-weights applies to `weights:` sources, and this config has none",
                        hint="model_cache entries choose with use_volume; drop --bake-weights")
    if config.weights:
        return WeightsMode.BAKE if options.bake_weights else WeightsMode.VOLUME
    if config.model_cache:
        return WeightsMode.VOLUME if config.volume_mode else WeightsMode.BAKE
    return WeightsMode.NONE


def _dev_image(options: BuildOptions, docker_server: DockerServerPlan | None, notes: list[str]) -> bool:
    """Whether the image carries the reload control (options.dev): Model-class trusses only."""
    if not options.dev:
        return False
    if docker_server is not None:
        notes.append("docker_server truss: its image gets no reload control (an edit restarts the container)")
        return False
    return True


def _check_options(options: BuildOptions) -> None:
    if options.max_weight_layers < 1:
        raise PlanError(f"--max-weight-layers {options.max_weight_layers} leaves no layer for the weights",
                        hint="use 1 or more (default 64)")
    index = urlsplit(options.pip_index_url) if options.pip_index_url else None
    if index is not None and (index.username or index.password):
        # The index URL becomes an ENV of the image; credentials in it would ship with every push.
        raise PlanError("--pip-index-url carries credentials, which would be stored in the image",
                        hint="use an index URL without user:password (authenticate via a proxy or netrc)")


def plan_build(loaded: LoadedConfig, manifest: Manifest, options: BuildOptions | None = None,
               base_facts: BaseImageFacts | None = None) -> BuildPlan:
    """Every decision of the build, from inputs that are all local (the manifest is pinned; the
    base image's facts were learnt from the engine by the caller, see builder.base_image_facts)."""
    options = options or BuildOptions()
    _check_options(options)
    config, root = loaded.config, loaded.truss_dir
    notes = _refuse_platform_only(loaded)
    before, after, split_notes = _split_build_commands(loaded, options)
    notes += split_notes
    mode = weights_mode(loaded, options)
    if any(not e.verifiable for e in manifest.entries):
        size_only = [e.destination for e in manifest.entries if not e.verifiable]
        notes.append(f"{len(size_only)} file(s) have no verifiable hash at the source and are checked by size only: "
                     + ", ".join(size_only[:3]))
    layers = WeightLayerPlan(max_layers=options.max_weight_layers)
    if mode is WeightsMode.BAKE:
        others = len(before) + len(after) + len(config.external_data or [])
        bound, lowered = weight_layer_bound(options.max_weight_layers,
                                            base_facts.layers if base_facts is not None else None, others)
        if bound < 1:
            raise PlanError(f"the image would pass {IMAGE_LAYER_BUDGET} layers before any weight layer: "
                            f"{len(before) + len(after)} build_commands, {len(config.external_data or [])} "
                            "external_data items and the base image's layers",
                            hint="merge build_commands into fewer lines (join with &&), or use a base image "
                            "with fewer layers")
        if lowered:
            notes.append(lowered)
        layers = plan_weight_layers(manifest, max_layers=bound, large_file_bytes=options.large_file_bytes)
    requirements = plan_requirements(config, root)
    added = server_packages(loaded, requirements)
    notes += added.notes()
    base = plan_base_image(config, options, base_facts)
    run_as = plan_run_as(config, base, mode, manifest)
    image_env, env_notes = plan_image_env(config)
    notes += base_image_notes(config, base, base_facts) + list(run_as.notes) + env_notes
    docker_server = _docker_server(loaded)
    dev = _dev_image(options, docker_server, notes)
    # docker_server images run the user's server: pack's model server (which traces) is not there.
    tracing = config.runtime.enable_tracing_data and docker_server is None
    websocket = docker_server is None and loaded.model_class is not None and loaded.model_class.defines_websocket
    if websocket:
        notes.append(f"the model defines `websocket` (served at /v1/websocket): the server layer adds "
                     f"`{WEBSOCKET_REQUIREMENT}` (the WebSocket protocol pack's server uses)")
    sources = plan_context_sources(loaded, requirements, docker_server, _package_dirs(loaded),
                                   _runtime_packages(manifest, tracing, websocket), options.ca_bundle, dev)
    notes += sources.notes()
    return BuildPlan(
        model_name=config.model_name or root.resolve().name,
        config_digest=config_digest(loaded),
        base=base,
        system_packages=tuple(config.system_packages),
        requirements=requirements,
        weights_mode=mode,
        prefetch_manifest=manifest if mode is WeightsMode.VOLUME else None,
        manifest=manifest,
        build_commands_before_code=before,
        build_commands_after_code=after,
        build_secret_names=tuple(sorted(config.build.secret_to_path_mapping)),
        external_data=tuple(ExternalFile(e.url, e.local_data_path, e.sha256) for e in config.external_data or []),
        docker_server=docker_server,
        sources=sources,
        options=options,
        weight_layers=layers,
        server_packages=added,
        notes=tuple(notes),
        accelerator=plan_accelerator(config),
        image_env=image_env + run_as.env,
        runtime_user=run_as.user,
        writable_dirs=run_as.writable_dirs,
        hf_cache_for_user=run_as.hf_cache,
        dev=dev,
    )
