"""config.yaml's environment_variables as the image's ENV, and what stays out of it.

Truss sets them only when its server starts; pack also bakes them as ENV (visible to
`docker inspect`, to build_commands and to anything the container runs). The entrypoint still
sets them at start (setdefault), so `docker run -e` wins over both, as before.
"""

from __future__ import annotations

import re

from packager.config import TrussConfig
from packager.config.load import env_looks_like_credential

# A name Dockerfile ENV takes as it is (no quoting, no `=`, no space).
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# A Dockerfile instruction is one line, and its double quotes do not read JSON's escapes of
# control characters (`\t` stays two characters): such values stay runtime-only.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def plan_image_env(config: TrussConfig) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """(the ENV pairs in config order, notes naming what stays runtime-only and why)."""
    env, credential, unsayable = [], [], []
    for key, value in config.environment_variables.items():
        if env_looks_like_credential(key, value):
            credential.append(key)  # warned at load; ENV would show it in every `docker inspect`
        elif not _KEY.match(key) or _CONTROL.search(value):
            unsayable.append(key)
        else:
            env.append((key, value))
    notes = []
    if credential:
        notes.append(f"environment_variables {', '.join(credential)} look like credentials: they are not "
                     "baked as ENV (the entrypoint sets them at start); pass secrets at run time instead")
    if unsayable:
        notes.append(f"environment_variables {', '.join(unsayable)} cannot be written as a Dockerfile ENV "
                     "(the name is not a shell name, or the value holds a newline or control character): "
                     "the entrypoint sets them at start")
    return tuple(env), notes
