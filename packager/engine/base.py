"""What every real engine backend shares: finding built images and running containers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from packager.engine.containers import DockerContainer, run_container
from packager.engine.detection import EngineInfo
from packager.engine.images import BuiltImage, lookup_image, pull_image
from packager.engine.pushing import push_stream
from packager.engine.requests import PushRequest, RunRequest


class DockerEngineBase:
    """Backends differ only in how they build; images and containers go through the docker API."""

    def __init__(self, info: EngineInfo):
        self.info = info

    def image(self, ref: str) -> BuiltImage | None:
        return lookup_image(ref, self.info.builder.value)

    def pull(self, ref: str) -> BuiltImage:
        return pull_image(ref, self.info.builder.value)

    def run(self, request: RunRequest) -> DockerContainer:
        return run_container(request)

    def push(self, request: PushRequest) -> Iterator[dict[str, Any]]:
        return push_stream(request)
