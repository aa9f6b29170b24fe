"""Registry credentials: given explicitly, or found where `docker login` put them.

The docker config (~/.docker/config.json, or $DOCKER_CONFIG/config.json) holds them in
`auths` (base64 user:password, or an identity token) or behind a credential helper
(`credsStore` / `credHelpers`); the Docker SDK's reader understands all three.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.engine.requests import RegistryLogin
from packager.errors import RegistryError
from packager.registry.reference import parse_reference


@dataclass(frozen=True)
class Credentials:
    username: str | None
    password: str | None = field(default=None, repr=False)  # never in reprs or logs
    identity_token: str | None = field(default=None, repr=False)
    source: str = "explicit"  # where they came from, for messages ("docker config", ...)

    def auth_config(self, registry: str) -> dict[str, str]:
        """The X-Registry-Auth payload the engine expects."""
        if self.identity_token:
            return {"identitytoken": self.identity_token, "serveraddress": registry}
        return {"username": self.username or "", "password": self.password or "", "serveraddress": registry}


def _config_file(config_path: str | Path | None) -> str | None:
    from docker.utils import config

    found: str | None = config.find_config_file(str(config_path) if config_path else None)
    return found


def from_docker_config(registry: str, *, config_path: str | Path | None = None) -> Credentials | None:
    """Credentials `docker login REGISTRY` stored, or None when there are none."""
    import docker.auth
    import docker.errors

    found = _config_file(config_path)
    try:
        # The SDK warns (on stderr) about a missing credential helper before failing; the
        # error below says it, so the warning is noise.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            config = docker.auth.load_config(config_path=str(config_path) if config_path else None)
            entry: dict[str, Any] | None = config.resolve_authconfig(docker.auth.resolve_index_name(registry))
    except docker.errors.DockerException as exc:
        # A broken credential helper or unreadable config: say so rather than pushing anonymously.
        raise RegistryError(
            f"cannot read credentials for {registry} from the docker config ({found or 'none found'}): {exc}",
            hint="fix the docker config, or pass --username and --password-stdin",
        ) from exc
    if not entry:
        return None
    normal = {key.lower(): value for key, value in entry.items()}
    source = f"docker config ({found})" if found else "docker credential helper"
    if normal.get("identitytoken"):
        return Credentials(None, identity_token=normal["identitytoken"], source=source)
    if not normal.get("username") and not normal.get("password"):
        return None  # an empty `auths` entry: the helper had nothing for this registry
    return Credentials(normal.get("username"), normal.get("password"), source=source)


def resolve_credentials(
    registry: str,
    *,
    username: str | None = None,
    password: str | None = None,
    config_path: str | Path | None = None,
) -> Credentials | None:
    """Explicit username/password win; otherwise the docker config; None means anonymous."""
    if username is not None or password is not None:
        if not username or password is None:
            raise RegistryError(
                "a registry login needs both a username and a password",
                hint="pass --username with --password-stdin",
            )
        return Credentials(username, password, source="explicit")
    return from_docker_config(registry, config_path=config_path)


def build_logins(refs: Iterable[str], *, username: str | None, password: str | None) -> tuple[RegistryLogin, ...]:
    """An explicit login for every registry the build's cache references name (none without
    one: the builder then uses the docker config's credentials, as `docker build` does)."""
    if username is None and password is None:
        return ()
    creds = resolve_credentials("", username=username, password=password)
    assert creds is not None and creds.username is not None and creds.password is not None
    registries = sorted({parse_reference(ref).registry for ref in refs if "type=" not in ref})
    return tuple(RegistryLogin(registry, creds.username, creds.password) for registry in registries)
