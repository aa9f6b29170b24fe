"""The interface every engine backend (and the FakeEngine test double) implements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from packager.engine.containers import ContainerHandle
from packager.engine.detection import EngineInfo
from packager.engine.events import ProgressCallback
from packager.engine.images import BuiltImage
from packager.engine.requests import BuildRequest, PushRequest, RunRequest


@runtime_checkable
class Engine(Protocol):
    info: EngineInfo

    def build(self, request: BuildRequest, progress: ProgressCallback | None = None) -> BuiltImage:
        """Build request.context_dir into an image; raise EngineError (BuildFailedError on a
        failing step, MissingCapabilityError when the Dockerfile needs what this builder lacks)."""
        ...

    def image(self, ref: str) -> BuiltImage | None:
        """The local image `ref` (tag or id), or None when the engine does not have it."""
        ...

    def pull(self, ref: str) -> BuiltImage:
        """Pull `ref` from its registry into the engine; EngineError when that fails."""
        ...

    def run(self, request: RunRequest) -> ContainerHandle:
        """Start a container on the host network, with the GPUs request.gpus asks for
        (GpuUnavailableError when the engine has no NVIDIA runtime to give them)."""
        ...

    def push(self, request: PushRequest) -> Iterator[dict[str, Any]]:
        """Tag and push; yield the engine's progress chunks as docker's API decodes them (a
        registry failure arrives as a chunk with `error`; PushStreamError when the push itself
        breaks)."""
        ...
