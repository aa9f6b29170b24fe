"""What every real engine backend shares: finding built images, running containers, and what
the engine holds (inventory.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from packager.engine import inventory
from packager.engine.containers import DockerContainer, run_container
from packager.engine.detection import EngineInfo
from packager.engine.images import BuiltImage, lookup_image, pull_image
from packager.engine.inventory import CacheEntry, ContainerInfo, ImageInfo, VolumeInfo
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

    def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        return inventory.list_containers(labels)

    def container(self, ref: str) -> DockerContainer | None:
        return inventory.get_container(ref)

    def list_volumes(self, prefix: str) -> list[VolumeInfo]:
        return inventory.list_volumes(prefix)

    def remove_volume(self, name: str) -> None:
        inventory.remove_volume(name)

    def list_images(self, labels: Mapping[str, str]) -> list[ImageInfo]:
        return inventory.list_images(labels)

    def remove_image(self, ref: str) -> None:
        inventory.remove_image(ref)

    def build_cache(self) -> list[CacheEntry]:
        return inventory.list_build_cache()

    def prune_build_cache(self, ids: Iterable[str]) -> list[str]:
        return inventory.prune_build_cache(ids)
