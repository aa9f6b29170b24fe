"""`pack fetch`: a node's weights fetched ahead of its containers. Kept apart from the build verbs
so that it loads only the downloader (no config schema, no engine)."""

from __future__ import annotations

import os
from pathlib import Path

from ..runner import weights
from ..runtime.transfer import Reporter
from ..runtime.transfer.results import FetchResult


def fetch(source: str | os.PathLike[str], dest: str | os.PathLike[str], *,
          cache_dir: str | os.PathLike[str] | None = None, workers: int | None = None,
          direct_io: bool | None = None, stats: str | os.PathLike[str] | None = None,
          secrets_dir: str | os.PathLike[str] | None = None, config: str | os.PathLike[str] | None = None,
          reporter: Reporter | None = None) -> FetchResult:
    """Download, verify and place every file of a weights manifest (a manifest file, or the
    lock of a truss directory; with `config`, the lock of that config file) under `dest`."""
    path = Path(source)
    lock = None
    if config is not None:
        from .truss import check, lock_file

        lock = lock_file(check(path, config=config))
    return weights.fetch_manifest(weights.read_manifest(path, lock), Path(dest), cache_dir=cache_dir,
                                  workers=workers, direct_io=direct_io, stats=stats, secrets_dir=secrets_dir,
                                  reporter=reporter)
