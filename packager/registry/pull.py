"""Pulling an image by tag or by digest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packager.engine.docker_api import open_client
from packager.registry.credentials import Credentials, resolve_credentials
from packager.registry.events import TransferCallback, ignore_transfer, transfer_event
from packager.registry.failures import registry_error
from packager.registry.reference import ImageReference, parse_reference


@dataclass(frozen=True)
class PulledImage:
    reference: ImageReference  # as requested, with the digest filled in when known
    id: str  # local image id ("sha256:<hex>"), what `run` takes
    digest: str | None  # manifest digest the registry served


def pull(
    ref: str | ImageReference,
    *,
    credentials: Credentials | None = None,
    username: str | None = None,
    password: str | None = None,
    config_path: str | Path | None = None,
    platform: str | None = None,
    progress: TransferCallback | None = None,
) -> PulledImage:
    import docker.errors

    target = parse_reference(ref) if isinstance(ref, str) else ref
    creds = credentials or resolve_credentials(
        target.registry, username=username, password=password, config_path=config_path
    )
    callback = progress or ignore_transfer

    def fail(detail: str) -> Exception:
        return registry_error(
            "pull", str(target), target.registry, detail,
            username=creds.username if creds else None, have_credentials=creds is not None,
        )

    # The engine takes a digest where the tag goes (fromImage=name&tag=sha256:...).
    selector = target.digest or target.tag
    digest = target.digest
    client = open_client()
    try:
        auth = creds.auth_config(target.registry) if creds else None
        try:
            for chunk in client.api.pull(
                target.name, tag=selector, auth_config=auth, platform=platform, stream=True, decode=True
            ):
                if chunk.get("error") or chunk.get("errorDetail"):
                    raise fail(str((chunk.get("errorDetail") or {}).get("message") or chunk.get("error")))
                status = chunk.get("status")
                if isinstance(status, str) and status.startswith("Digest: "):
                    digest = digest or status.removeprefix("Digest: ").strip()
                event = transfer_event(chunk)
                if event is not None:
                    callback(event)
        except docker.errors.APIError as exc:
            raise fail(str(exc.explanation or exc)) from exc
        local = target.pinned if target.digest else f"{target.name}:{target.tag}"
        attrs = client.api.inspect_image(local)
    finally:
        client.close()
    if digest is None:
        for repo_digest in attrs.get("RepoDigests") or ():
            name, _, found = repo_digest.partition("@")
            if name == target.name:
                digest = found
    return PulledImage(target.with_digest(digest), attrs["Id"], digest)
