"""Pushing a local image with the Docker SDK: the engine's JSON stream, chunk by chunk.

The engine reports registry failures inside that stream (HTTP 200 with an `error` line), not
as an HTTP error; the registry stage reads every chunk (registry/push.py). What breaks the
stream itself (no such image, the API refusing, the connection dropping) is a PushStreamError.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from packager.engine.docker_api import open_client
from packager.engine.failures import PushStreamError
from packager.engine.requests import PushRequest


def push_stream(request: PushRequest) -> Iterator[dict[str, Any]]:
    """Tag and push; yield the engine's decoded progress chunks."""
    import docker.errors
    import requests.exceptions

    client = open_client()
    try:
        try:
            client.api.tag(request.image, request.repository, request.tag)
        except docker.errors.ImageNotFound as exc:
            raise PushStreamError(f"no such image: {request.image}") from exc
        try:
            yield from client.api.push(request.repository, tag=request.tag,
                                       auth_config=dict(request.auth) if request.auth else None,
                                       stream=True, decode=True)
        except docker.errors.APIError as exc:
            raise PushStreamError(str(exc.explanation or exc)) from exc
        except requests.exceptions.RequestException as exc:
            # The engine connection broke mid-stream; the registry keeps what arrived.
            raise PushStreamError(f"connection to the engine broke: unexpected EOF ({exc})") from exc
    finally:
        client.close()
