"""The interface every engine backend (and the FakeEngine test double) implements."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from packager.engine.containers import ContainerHandle, GpuRequest
from packager.engine.detection import EngineInfo
from packager.engine.events import ProgressCallback
from packager.engine.images import BuiltImage


@runtime_checkable
class Engine(Protocol):
    info: EngineInfo

    def build(
        self,
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
        """Build context_dir into an image; raise EngineError (BuildFailedError on a failing
        step, MissingCapabilityError when the Dockerfile needs what this builder lacks)."""
        ...

    def image(self, ref: str) -> BuiltImage | None:
        """The local image `ref` (tag or id), or None when the engine does not have it."""
        ...

    def pull(self, ref: str) -> BuiltImage:
        """Pull `ref` from its registry into the engine; EngineError when that fails."""
        ...

    def run(
        self,
        image: str,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        secrets_dir: str | Path | None = None,
        volumes: Mapping[str, str] | None = None,
        name: str | None = None,
        command: list[str] | None = None,
        replace: bool = False,
        gpus: GpuRequest | None = None,
    ) -> ContainerHandle:
        """Start a container from image on the host network, with the GPUs `gpus` asks for
        (GpuUnavailableError when the engine has no NVIDIA runtime to give them)."""
        ...
