"""What a caller asks an engine for: one typed request per verb, instead of keyword lists that
every backend, the fake and every caller would copy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class GpuRequest:
    """GPUs for a container: every GPU the engine has (count None, `docker run --gpus all`), or
    that many."""

    count: int | None = None

    def __str__(self) -> str:
        return "all GPUs" if self.count is None else f"{self.count} GPU{'s' if self.count != 1 else ''}"


@dataclass(frozen=True)
class BuildRequest:
    """Build `context_dir` (which holds `dockerfile`) into an image."""

    context_dir: Path
    tag: str | None = None
    dockerfile: str = "Dockerfile"
    secrets: Mapping[str, Path] = field(default_factory=dict)  # BuildKit secret id -> host file
    build_args: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    platform: str | None = None
    network: str = "host"  # this machine forbids bridge networks: builds use the host's
    labels: Mapping[str, str] = field(default_factory=dict)  # on the image config only (not a layer)


@dataclass(frozen=True)
class RunRequest:
    """Start a container from `image` on the host network."""

    image: str
    port: int | None = None  # told to the server (INFERENCE_SERVER_PORT); the URL is 127.0.0.1:port
    env: Mapping[str, str] = field(default_factory=dict)
    secrets_dir: Path | None = None  # each file mounted read-only at /secrets/<name>
    volumes: Mapping[str, str] = field(default_factory=dict)  # volume name or host dir -> path[:ro]
    name: str | None = None
    command: tuple[str, ...] | None = None
    replace: bool = False  # remove a container of the same name first
    gpus: GpuRequest | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # on the container and the volumes it creates


@dataclass(frozen=True)
class PushRequest:
    """Tag local `image` (id or tag) as repository:tag and push it with `auth` (the registry
    credentials docker's API takes; None: anonymous)."""

    image: str
    repository: str
    tag: str
    auth: Mapping[str, str] | None = None
