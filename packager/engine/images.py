"""What a build produces."""

from __future__ import annotations

from dataclasses import dataclass, field

from packager.engine.docker_api import open_client
from packager.engine.requests import LayerCache
from packager.errors import EngineError


@dataclass(frozen=True)
class BuiltImage:
    id: str  # "sha256:<hex>" image id (the config digest)
    tags: tuple[str, ...]
    size: int  # bytes, as the engine reports the image
    # Dockerfile steps (by name) that ran and that came from the cache: lets callers check that a
    # rebuild after a code edit re-ran only the layers after the code.
    built_steps: tuple[str, ...] = field(default=())
    cached_steps: tuple[str, ...] = field(default=())
    duration_s: float = 0.0
    builder: str = ""  # EngineInfo.builder.value of the backend that built it
    user: str = ""  # the image's configured USER (Config.User; "" is root)
    layers: int = 0  # filesystem layers (RootFS.Layers): the overlay driver stops near 125
    # The engine's transient failure that made the build run a second time ("" when it ran once).
    retried: str = ""
    cache: LayerCache = field(default_factory=lambda: LayerCache(inline=False))  # what the builder did
    # --cache-from references the builder could not read, with its reason ("401 Unauthorized",
    # "not found"): BuildKit goes on without them, so a cold build must say why it was cold.
    cache_unavailable: tuple[tuple[str, str], ...] = ()


def lookup_image(ref: str, builder: str = "") -> BuiltImage | None:
    """The local image `ref` (tag or id), or None when the engine does not have it."""
    import docker

    client = open_client()
    try:
        attrs = client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        raise EngineError(f"cannot inspect image {ref}: {exc.explanation or exc}") from exc
    return BuiltImage(id=attrs["Id"], tags=tuple(attrs.get("RepoTags") or ()), size=int(attrs.get("Size") or 0),
                      builder=builder, user=str((attrs.get("Config") or {}).get("User") or ""),
                      layers=len((attrs.get("RootFS") or {}).get("Layers") or ()))


def pull_image(ref: str, builder: str = "") -> BuiltImage:
    """Pull `ref` into the engine (credentials from the docker config, as `docker pull`) and
    return it as a local image; EngineError when the registry or the network refuses."""
    import docker
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(ref)
    client = open_client()
    try:
        # A reference without a tag means :latest; the SDK would otherwise pull every tag.
        for chunk in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
            if chunk.get("error") or chunk.get("errorDetail"):
                raise EngineError(f"cannot pull {ref}: "
                                  f"{(chunk.get('errorDetail') or {}).get('message') or chunk.get('error')}")
    except docker.errors.APIError as exc:
        raise EngineError(f"cannot pull {ref}: {exc.explanation or exc}") from exc
    finally:
        client.close()
    image = lookup_image(ref, builder)
    if image is None:
        raise EngineError(f"pulled {ref}, but the engine does not list it")
    return image
