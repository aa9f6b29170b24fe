"""Checking credentials against a registry before a long build-and-push."""

from __future__ import annotations

from pathlib import Path

from packager.engine.docker_api import open_client
from packager.errors import RegistryError
from packager.registry.credentials import Credentials, resolve_credentials
from packager.registry.failures import registry_error
from packager.registry.reference import DEFAULT_REGISTRY


def login(
    registry: str,
    *,
    credentials: Credentials | None = None,
    username: str | None = None,
    password: str | None = None,
    config_path: str | Path | None = None,
) -> Credentials:
    """Verify credentials with the registry (through the engine); return them.

    Nothing is written to the docker config: pack uses the credentials for its own push, it
    does not log the machine in.
    """
    import docker.errors

    creds = credentials or resolve_credentials(registry, username=username, password=password, config_path=config_path)
    if creds is None:
        raise RegistryError(
            f"no credentials for {registry}",
            hint=f"run `docker login {registry}`, or pass --username and --password-stdin",
        )
    if creds.identity_token:
        return creds  # the engine's /auth cannot check a token; the push will
    client = open_client()
    try:
        client.api.login(
            creds.username or "", creds.password or "",
            registry=None if registry == DEFAULT_REGISTRY else registry, reauth=True,
        )
    except docker.errors.APIError as exc:
        detail = str(exc.explanation or exc)
        raise registry_error(
            "login", registry, registry, detail, username=creds.username, have_credentials=True
        ) from exc
    finally:
        client.close()
    return creds
