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
class LayerCache:
    """Where a build takes layer cache from besides the engine's own, and where it leaves it for
    the next one: a fresh CI runner has nothing local, so the cache travels through a registry."""

    sources: tuple[str, ...] = ()  # registry images (or cache refs) to import cache from
    inline: bool = True  # cache metadata in the image's own config: pushed with it, read by --cache-from
    export_ref: str | None = None  # a registry cache export of every stage (mode=max; buildx builders)

    @property
    def mode(self) -> str:
        """What the next build can reuse: "registry", "inline" or "none"."""
        return "registry" if self.export_ref else "inline" if self.inline else "none"

    def describe(self) -> str:
        """One line for humans: what this build wrote and read."""
        wrote = {"registry": f"exported to {self.export_ref} (every stage)",
                 "inline": "inline metadata in the image (push it; build with --cache-from it)",
                 "none": "none written"}[self.mode]
        read = f"; imported from {', '.join(self.sources)}" if self.sources else ""
        return f"layer cache: {wrote}{read}"


@dataclass(frozen=True)
class RegistryLogin:
    """A registry login for what the build itself reads or writes there (a layer cache), given
    to the builder for this build only."""

    registry: str  # host[:port], as docker's config names it
    username: str
    password: str = field(repr=False)


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
    cache: LayerCache = field(default_factory=LayerCache)
    logins: tuple[RegistryLogin, ...] = ()


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
