"""What a build produces."""

from __future__ import annotations

from dataclasses import dataclass, field

from packager.engine.docker_api import image_tags_and_size, open_client
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


def lookup_image(ref: str, builder: str = "") -> BuiltImage | None:
    """The local image `ref` (tag or id), or None when the engine does not have it."""
    import docker

    client = open_client()
    try:
        image_id, tags, size = image_tags_and_size(client, ref)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        raise EngineError(f"cannot inspect image {ref}: {exc.explanation or exc}") from exc
    return BuiltImage(id=image_id, tags=tags, size=size, builder=builder)
