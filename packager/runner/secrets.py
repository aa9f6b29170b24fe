"""Secrets of a local run: resolved on this host, mounted read-only at /secrets/<name>, gone
when the run command returns."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import PackError
from ..plan.sources import Credentials
from ..plan.sources.spec import DEFAULT_SECRET_NAME


def host_secrets(names: tuple[str, ...] | list[str], credentials: Credentials | None = None) -> dict[str, str]:
    """Values for `pack run --secret NAME`, looked up as the plan looks up credentials (the
    secrets dir, TRUSS_SECRET_<NAME>; the HF token also HF_TOKEN) and passed verbatim: the
    runtime strips only where it uses a value as a credential, as Truss does with secret files."""
    credentials = credentials or Credentials.from_environment()
    values = {}
    for name in names:
        found = (credentials.hf_token(name, verbatim=True) if name == DEFAULT_SECRET_NAME
                 else credentials.secret(name, verbatim=True))
        if found is None:
            raise PackError(f"secret `{name}` is not set on this host",
                            hint=f"put it in {credentials.where_to_put(name)}")
        values[name] = found.value
    return values


@contextmanager
def secrets_mount(secrets_dir: str | os.PathLike[str] | None, named: dict[str, str]) -> Iterator[Path | None]:
    """One private directory holding --secrets-dir's files plus the --secret values resolved on
    the host; it is mounted read-only file by file and removed when the run command returns."""
    if not named:
        yield Path(secrets_dir) if secrets_dir else None
        return
    directory = Path(tempfile.mkdtemp(prefix="pack-run-secrets-"))
    os.chmod(directory, 0o700)
    try:
        if secrets_dir:
            for item in Path(secrets_dir).iterdir():
                if item.is_file():
                    shutil.copyfile(item, directory / item.name)
        for key, value in named.items():
            # Readable inside the container by a server that is not root (the base image's own
            # USER); on this host the 0700 directory keeps everyone else out.
            fd = os.open(directory / key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(value)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


