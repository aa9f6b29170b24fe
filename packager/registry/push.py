"""Pushing a local image to a registry with the Docker SDK.

The engine reports registry failures inside the push's JSON stream (HTTP 200 with an
`error` line), not as an HTTP error, so the stream is read to the end and every error line
becomes a RegistryError. A push broken off half-way can simply be repeated: the registry keeps
the layers it already has ("Layer already exists") and the manifest is written last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packager.engine.docker_api import open_client
from packager.errors import RegistryError
from packager.registry.credentials import Credentials, resolve_credentials
from packager.registry.events import TransferCallback, ignore_transfer, transfer_event
from packager.registry.failures import (
    RegistryFailure,
    RegistryOperationError,
    registry_error,
)
from packager.registry.reference import ImageReference, parse_reference


@dataclass(frozen=True)
class PushedImage:
    reference: ImageReference  # the pushed tag, with its digest filled in
    digest: str  # "sha256:<hex>" manifest digest
    size: int | None  # manifest size in bytes, as the engine reports it
    credentials_source: str | None  # where the credentials came from; None = anonymous

    @property
    def pinned(self) -> str:
        """registry/name@digest, the reference to deploy."""
        return self.reference.pinned


def push(
    image: str,
    ref: str | ImageReference,
    *,
    credentials: Credentials | None = None,
    username: str | None = None,
    password: str | None = None,
    config_path: str | Path | None = None,
    progress: TransferCallback | None = None,
) -> PushedImage:
    """Tag local `image` (id or tag) as `ref` and push it; return the registry's digest."""
    import docker.errors
    import requests.exceptions

    target = parse_reference(ref) if isinstance(ref, str) else ref
    if target.digest:
        raise RegistryError(f"cannot push to {target}: a digest names existing content", hint="push to a tag")
    assert target.tag is not None
    creds = credentials or resolve_credentials(
        target.registry, username=username, password=password, config_path=config_path
    )
    callback = progress or ignore_transfer

    def fail(detail: str) -> RegistryOperationError:
        return registry_error(
            "push", str(target), target.registry, detail,
            username=creds.username if creds else None, have_credentials=creds is not None,
        )

    client = open_client()
    try:
        try:
            client.api.tag(image, target.name, target.tag)
        except docker.errors.ImageNotFound as exc:
            raise fail(f"no such image: {image}") from exc
        auth = creds.auth_config(target.registry) if creds else None
        digest: str | None = None
        size: int | None = None
        try:
            for chunk in client.api.push(target.name, tag=target.tag, auth_config=auth, stream=True, decode=True):
                if chunk.get("error") or chunk.get("errorDetail"):
                    detail = (chunk.get("errorDetail") or {}).get("message") or chunk.get("error")
                    raise fail(str(detail))
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest, size = str(aux["Digest"]), aux.get("Size")
                    continue
                event = transfer_event(chunk)
                if event is not None:
                    callback(event)
        except docker.errors.APIError as exc:
            raise fail(str(exc.explanation or exc)) from exc
        except requests.exceptions.RequestException as exc:
            # The engine connection broke mid-stream; the registry keeps what arrived.
            raise registry_error(
                "push", str(target), target.registry, f"connection to the engine broke: unexpected EOF ({exc})",
                username=None, have_credentials=creds is not None,
            ) from exc
    finally:
        client.close()
    if digest is None:
        raise RegistryOperationError(
            f"push of {target} ended without a digest from {target.registry}",
            kind=RegistryFailure.OTHER, detail="", hint="run the push again",
        )
    return PushedImage(
        target.with_digest(digest), digest, int(size) if size is not None else None,
        creds.source if creds else None,
    )
