"""Registry logins for one BuildKit build through the docker CLI: BuildKit reads a --cache-from
image (and writes a --cache-to export) with the CLI's credentials, which come from its config
directory. A build given logins gets a config directory of its own: the user's config.json with
those logins added, its CLI plugins linked (buildx lives there), readable by root only and gone
with the build; the user's own docker config is never written."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from packager.engine.requests import RegistryLogin


def user_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def login_config_dir(dest: Path, logins: Sequence[RegistryLogin], source: Path | None = None) -> Path:
    """Write the config directory at `dest` (created 0700) and return it, for DOCKER_CONFIG."""
    source = source or user_config_dir()
    config: dict[str, Any] = {}
    try:
        loaded = json.loads((source / "config.json").read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            config = loaded
    except (OSError, ValueError):  # none yet, or unreadable: the logins alone
        pass
    auths = config.setdefault("auths", {})
    helpers = config.get("credHelpers") or {}
    for login in logins:
        token = base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
        auths[login.registry] = {"auth": token}
        helpers.pop(login.registry, None)  # a helper for that registry would win over the login
    if logins and config.get("credsStore"):
        # A global store answers for every registry and would hide these logins; for this
        # build, registries without a login are anonymous (said in the README's CI section).
        del config["credsStore"]
    dest.mkdir(mode=0o700)
    path = dest / "config.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(config, fh)
    plugins = source / "cli-plugins"
    if plugins.is_dir():
        (dest / "cli-plugins").symlink_to(plugins.resolve())
    return dest
