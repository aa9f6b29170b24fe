"""The Docker SDK client, opened with pack's errors and timeouts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from packager.engine.failures import EngineUnavailableError

if TYPE_CHECKING:
    import docker

# Builds and pushes stream for minutes; the SDK's timeout applies per socket read.
_API_TIMEOUT_S = 600
SETUP_HINT = "start one with `sudo scripts/setup-dev.sh`, or point DOCKER_HOST at a running engine"


def open_client(timeout: int | None = _API_TIMEOUT_S) -> docker.DockerClient:
    """A client whose socket reads time out after `timeout` seconds (None: never, for a log
    stream that may stay quiet for hours)."""
    import docker  # lazy: packager must import without the docker SDK inside images

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # DockerException, socket and HTTP errors all mean "no engine"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EngineUnavailableError(f"no Docker engine answers: {first}", SETUP_HINT) from exc
    return client


def image_tags_and_size(client: docker.DockerClient, image: str) -> tuple[str, tuple[str, ...], int, int]:
    """(id, tags, size, filesystem layers) of a local image."""
    attrs = client.api.inspect_image(image)
    layers = len((attrs.get("RootFS") or {}).get("Layers") or ())
    return attrs["Id"], tuple(attrs.get("RepoTags") or ()), int(attrs.get("Size") or 0), layers
