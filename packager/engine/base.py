"""What every real engine backend shares: finding built images and running containers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from packager.engine.containers import DockerContainer, GpuRequest, run_container
from packager.engine.detection import EngineInfo
from packager.engine.images import BuiltImage, lookup_image, pull_image


class DockerEngineBase:
    """Backends differ only in how they build; images and containers go through the docker API."""

    def __init__(self, info: EngineInfo):
        self.info = info

    def image(self, ref: str) -> BuiltImage | None:
        return lookup_image(ref, self.info.builder.value)

    def pull(self, ref: str) -> BuiltImage:
        return pull_image(ref, self.info.builder.value)

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
    ) -> DockerContainer:
        return run_container(
            image, port=port, env=env, secrets_dir=secrets_dir, volumes=volumes, name=name,
            command=command, replace=replace, gpus=gpus,
        )
