"""Credentials a build needs, resolved on the host and handed to BuildKit as secret files.

Two kinds: the weight-source credentials the bake-mode download reads (hf_access_token, S3/GCS
JSON; optional, public repos need none) and build.secret_to_path_mapping secrets for
build_commands (required: a mapped secret pack cannot supply is an error, never an empty mount).
Values go to 0600 files in a private temporary directory that is removed after the build; they
never become build args, ENV or files of the context.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

from ..errors import PlanError
from ..plan.model import BuildPlan
from ..plan.sources import Credentials


def needed_secrets(plan: BuildPlan) -> tuple[set[str], set[str]]:
    """(required names, optional names) the build's RUN steps mount."""
    required = set(plan.build_secret_names)
    optional = {name for layer in plan.weight_layers.layers for name in layer.secret_names} - required
    return required, optional


@contextmanager
def secret_files(plan: BuildPlan, credentials: Credentials) -> Iterator[dict[str, Path]]:
    """Yield {secret name: file} for every secret the build mounts that the host can supply."""
    required, optional = needed_secrets(plan)
    directory = Path(tempfile.mkdtemp(prefix="pack-build-secrets-"))
    os.chmod(directory, 0o700)
    try:
        files: dict[str, Path] = {}
        for name in sorted(required | optional):
            found = credentials.secret(name)
            if found is None and name == "hf_access_token":
                found = credentials.hf_token(name)
            if found is None and name in required:
                raise PlanError(
                    f"build.secret_to_path_mapping needs the secret `{name}`, which is not set",
                    hint=f"put it in {credentials.where_to_put(name)} (never in config.yaml)",
                )
            # An absent optional credential (a public repo) is an empty file: the downloader
            # reads empty as "no token", and every mount the Dockerfile declares has a source.
            path = directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(found.value if found is not None else "")
            files[name] = path
        yield files
    finally:
        shutil.rmtree(directory, ignore_errors=True)
