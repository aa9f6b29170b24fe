"""The one lookup order for a named secret, on the build host and inside the image.

A secret named N is the file <secrets dir>/N, then the environment variable TRUSS_SECRET_N
(truss-compat §2.8, §6.2). A value that is empty or the Chains placeholder, however padded,
counts as unset. Values come back as written; a caller using one as a credential strips it.

Standard library only: copied into images beside the rest of packager.runtime.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from packager import constants


def is_unset(value: str) -> bool:
    return value.strip() in ("", constants.SECRET_PLACEHOLDER)


def is_plain_name(name: str) -> bool:
    """A name that stays inside the secrets dir as a single file."""
    return bool(name) and "/" not in name and "\0" not in name and name not in (".", "..")


@dataclass(frozen=True)
class FoundSecret:
    value: str
    origin: str  # where it was found, safe to print: "secret file /secrets/hf" or "env TRUSS_SECRET_hf"

    def __repr__(self) -> str:  # keep the value out of logs and tracebacks
        return f"FoundSecret(origin={self.origin!r})"


def lookup(name: str, secrets_dir: str | os.PathLike[str] | None, env: Mapping[str, str]) -> FoundSecret | None:
    """The secret's value by the lookup order, or None when it is set nowhere. A name that is not a
    plain file name is never read as a file: it could reach outside the secrets dir."""
    if secrets_dir is not None and is_plain_name(name):
        path = os.path.join(secrets_dir, name)
        try:
            with open(path, encoding="utf-8") as fh:
                value = fh.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            pass
        else:
            if not is_unset(value):
                return FoundSecret(value, f"secret file {path}")
    variable = constants.TRUSS_SECRET_PREFIX + name
    env_value = env.get(variable)
    if env_value is not None and not is_unset(env_value):
        return FoundSecret(env_value, f"env {variable}")
    return None


def places(name: str, secrets_dir: str | os.PathLike[str] | None) -> str:
    """Where a missing secret would have been read from, for hints."""
    where_file = (f"the file {os.path.join(secrets_dir, name)}" if secrets_dir is not None
                  else f"a file named {name} in the dir ${constants.PACK_SECRETS_DIR}")
    return f"{where_file} or the env var {constants.TRUSS_SECRET_PREFIX}{name}"
