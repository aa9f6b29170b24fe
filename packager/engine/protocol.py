"""The interface every engine backend (and the FakeEngine test double) implements."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from packager.engine.containers import ContainerHandle
from packager.engine.detection import EngineInfo
from packager.engine.events import ProgressCallback
from packager.engine.images import BuiltImage
from packager.engine.inventory import CacheEntry, ContainerInfo, ImageInfo, VolumeInfo
from packager.engine.requests import BuildRequest, PushRequest, RunRequest


class ContainerRunner(Protocol):
    """The part of an engine that starts containers: all runner.start needs (a caller may hand
    it a wrapper that does only this)."""

    def run(self, request: RunRequest) -> ContainerHandle: ...


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

    def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """Every container, running or not, that carries all of `labels`; oldest first."""
        ...

    def container(self, ref: str) -> ContainerHandle | None:
        """A handle on container `ref` (id or name), None when there is none."""
        ...

    def list_volumes(self, prefix: str) -> list[VolumeInfo]:
        """The volumes whose name starts with `prefix`, by name."""
        ...

    def remove_volume(self, name: str) -> None:
        """Remove a volume (EngineError while a container uses it)."""
        ...

    def list_images(self, labels: Mapping[str, str]) -> list[ImageInfo]:
        """Local images that carry all of `labels`; oldest first."""
        ...

    def remove_image(self, ref: str) -> None:
        """Untag `ref` (a tag), or remove an untagged image by id; never forced."""
        ...

    def build_cache(self) -> list[CacheEntry]:
        """The records of the engine's BuildKit cache ([] for an engine without one)."""
        ...

    def prune_build_cache(self, ids: Iterable[str]) -> list[str]:
        """Remove these build cache records; the ids removed (a record in use stays)."""
        ...
