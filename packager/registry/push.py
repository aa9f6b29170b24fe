"""Pushing a local image to a registry through the engine (engine.push: docker's push stream).

The engine reports registry failures inside the push's JSON stream (HTTP 200 with an
`error` line), not as an HTTP error, so the stream is read to the end and every error line
becomes a RegistryError. A push broken off half-way can simply be repeated: the registry keeps
the layers it already has ("Layer already exists") and the manifest is written last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packager.engine import Engine, PushRequest, PushStreamError, open_engine
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
    engine: Engine | None = None,
    credentials: Credentials | None = None,
    username: str | None = None,
    password: str | None = None,
    config_path: str | Path | None = None,
    progress: TransferCallback | None = None,
) -> PushedImage:
    """Tag local `image` (id or tag) as `ref` and push it with `engine` (the machine's by
    default); return the registry's digest."""
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

    engine = engine or open_engine()
    request = PushRequest(image, target.name, target.tag, creds.auth_config(target.registry) if creds else None)
    digest: str | None = None
    size: int | None = None
    try:
        for chunk in engine.push(request):
            if chunk.get("error") or chunk.get("errorDetail"):
                raise fail(str((chunk.get("errorDetail") or {}).get("message") or chunk.get("error")))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest, size = str(aux["Digest"]), aux.get("Size")
                continue
            event = transfer_event(chunk)
            if event is not None:
                callback(event)
    except PushStreamError as exc:
        raise fail(exc.detail) from exc
    if digest is None:
        raise RegistryOperationError(
            f"push of {target} ended without a digest from {target.registry}",
            kind=RegistryFailure.OTHER, detail="", hint="run the push again",
        )
    return PushedImage(
        target.with_digest(digest), digest, int(size) if size is not None else None,
        creds.source if creds else None,
    )
