"""Building and running images with a Docker engine.

    info = detect_engine()              # what answers, which builder, what is lost; never raises
    engine = open_engine(info)          # BuildKitEngine or ClassicEngine (EngineError if none)
    image = engine.build(BuildRequest(ctx, tag="m:1", secrets={"hf_token": path}), progress=on_event)
    container = engine.run(RunRequest(image.id, port=8080, secrets_dir=dir, volumes={"pack-cache": "/cache"}))
    seconds = wait_ready(container.url + "/", 120, container=container)

`import packager.engine` does not import the docker SDK; it loads on the first call that talks
to an engine, so tests with FakeEngine and the CLI's --help stay fast.
"""

from __future__ import annotations

from packager.engine.buildkit import BuildKitEngine
from packager.engine.classic import ClassicEngine
from packager.engine.containers import (
    ContainerHandle,
    DockerContainer,
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
    PushStreamError,
)
from packager.engine.fake import FakeBuild, FakeContainer, FakeEngine
from packager.engine.features import Feature
from packager.engine.images import BuiltImage, lookup_image
from packager.engine.inventory import CacheEntry, ContainerInfo, ImageInfo, VolumeInfo
from packager.engine.protocol import ContainerRunner, Engine
from packager.engine.requests import BuildRequest, GpuRequest, LayerCache, PushRequest, RegistryLogin, RunRequest


def open_engine(info: EngineInfo | None = None) -> BuildKitEngine | ClassicEngine:
    """The engine backend for `info` (detected when not given)."""
    info = info or detect_engine()
    if not info.available:
        raise EngineUnavailableError(info.reason[:1].upper() + info.reason[1:], SETUP_HINT)
    return BuildKitEngine(info) if info.buildkit else ClassicEngine(info)


__all__ = [
    "BuildFailedError",
    "BuildKitEngine",
    "BuildRequest",
    "LayerCache",
    "RegistryLogin",
    "BuilderKind",
    "BuiltImage",
    "CacheEntry",
    "ClassicEngine",
    "CliProbe",
    "ContainerHandle",
    "ContainerInfo",
    "ContainerRunner",
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
    "ImageInfo",
    "MissingCapabilityError",
    "ProgressCallback",
    "PushRequest",
    "PushStreamError",
    "RunRequest",
    "StepEvent",
    "StepEventKind",
    "VolumeInfo",
    "detect_engine",
    "lookup_image",
    "open_engine",
    "run_container",
    "wait_ready",
]
