"""Building and running images with a Docker engine.

    info = detect_engine()              # what answers, which builder, what is lost; never raises
    engine = open_engine(info)          # BuildKitEngine or ClassicEngine (EngineError if none)
    image = engine.build(ctx, tag="m:1", secrets={"hf_token": path}, progress=on_event)
    container = engine.run(image.id, port=8080, secrets_dir=dir, volumes={"pack-cache": "/cache"})
    seconds = wait_ready(container.url + "/", 120, container=container)

`import packager.engine` does not import the docker SDK; it loads on the first call that talks
to an engine, so tests with FakeEngine and the CLI's --help stay fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from packager.engine.buildkit import BuildKitEngine
from packager.engine.classic import ClassicEngine
from packager.engine.containers import (
    ContainerHandle,
    DockerContainer,
    GpuRequest,
    run_container,
    wait_ready,
)
from packager.engine.detection import BuilderKind, CliProbe, EngineInfo, detect_engine
from packager.engine.docker_api import SETUP_HINT
from packager.engine.events import ProgressCallback, StepEvent, StepEventKind
from packager.engine.failures import (
    BuildFailedError,
    EngineUnavailableError,
    GpuUnavailableError,
    MissingCapabilityError,
)
from packager.engine.fake import FakeBuild, FakeContainer, FakeEngine
from packager.engine.features import Feature
from packager.engine.images import BuiltImage, lookup_image
from packager.engine.protocol import Engine


def open_engine(info: EngineInfo | None = None) -> BuildKitEngine | ClassicEngine:
    """The engine backend for `info` (detected when not given)."""
    info = info or detect_engine()
    if not info.available:
        raise EngineUnavailableError(info.reason[:1].upper() + info.reason[1:], SETUP_HINT)
    return BuildKitEngine(info) if info.buildkit else ClassicEngine(info)


def build(
    context_dir: str | Path,
    *,
    tag: str | None = None,
    dockerfile: str | Path = "Dockerfile",
    secrets: Mapping[str, str | Path] | None = None,
    build_args: Mapping[str, str] | None = None,
    no_cache: bool = False,
    platform: str | None = None,
    progress: ProgressCallback | None = None,
    network: str = "host",
) -> BuiltImage:
    """Build with the best engine this machine has (see Engine.build)."""
    return open_engine().build(
        context_dir, tag=tag, dockerfile=dockerfile, secrets=secrets, build_args=build_args,
        no_cache=no_cache, platform=platform, progress=progress, network=network,
    )


run = run_container  # module-level twin of Engine.run: containers do not depend on the builder


__all__ = [
    "BuildFailedError",
    "BuildKitEngine",
    "BuilderKind",
    "BuiltImage",
    "ClassicEngine",
    "CliProbe",
    "ContainerHandle",
    "DockerContainer",
    "Engine",
    "EngineInfo",
    "EngineUnavailableError",
    "FakeBuild",
    "FakeContainer",
    "FakeEngine",
    "Feature",
    "GpuRequest",
    "GpuUnavailableError",
    "MissingCapabilityError",
    "ProgressCallback",
    "StepEvent",
    "StepEventKind",
    "build",
    "detect_engine",
    "lookup_image",
    "open_engine",
    "run",
    "run_container",
    "wait_ready",
]
