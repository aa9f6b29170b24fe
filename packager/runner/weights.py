"""A node's weights fetched ahead of its containers (`pack fetch`): a pinned manifest, or the lock
of a truss, downloaded and verified on the host by the in-image downloader's engine."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import PackError, TransferError
from ..plan.lock_file import LOCK_FILENAME, read_lock
from ..runtime.manifest import Manifest, ManifestError, load
from ..runtime.transfer import InsufficientSpace, Reporter, TransferFailed, TransferSettings, fetch
from ..runtime.transfer.results import FetchResult


def read_manifest(source: Path, lock: Path | None = None) -> Manifest:
    """SOURCE is a manifest file, or a truss directory whose pack.lock (or `lock`, the lock of
    another config file) pins one."""
    if source.is_dir():
        lock = lock or source / LOCK_FILENAME
        pinned = read_lock(lock)
        if pinned is None:
            raise PackError(f"{lock} does not exist, so there is no pinned weights manifest to fetch",
                            hint=f"resolve the truss first (`pack lock {source}` writes it), or pass a "
                            "manifest file")
        return pinned.manifest
    try:
        return load(str(source))
    except FileNotFoundError:
        raise PackError(f"{source} does not exist") from None
    except ManifestError as exc:
        raise TransferError(f"{source}: invalid weights manifest: {exc}") from None


def fetch_manifest(manifest: Manifest, dest: Path, *, cache_dir: str | os.PathLike[str] | None = None,
                   workers: int | None = None, direct_io: bool | None = None,
                   stats: str | os.PathLike[str] | None = None, secrets_dir: str | os.PathLike[str] | None = None,
                   reporter: Reporter | None = None) -> FetchResult:
    """Fetch every entry under `dest` (/app/model_cache/x/a -> DEST/x/a); TransferError with the
    cause and the fix when something cannot be fetched (completed ranges are kept and resume)."""
    try:
        return fetch(
            manifest, str(dest), cache_dir=str(cache_dir) if cache_dir else None, workers=workers,
            reporter=reporter, secrets_dir=str(secrets_dir) if secrets_dir else None,
            stats_path=str(stats) if stats else None, settings=TransferSettings(direct_io=direct_io),
        )
    except InsufficientSpace as exc:
        raise TransferError(f"{exc.problem()}\nNothing was downloaded.", hint=exc.fix) from None
    except TransferFailed as exc:
        raise TransferError(str(exc), hint="fix the causes above and re-run: completed ranges "
                            "are kept and resume") from None
    except ManifestError as exc:
        raise TransferError(f"{dest}: {exc}") from None
    except OSError as exc:
        raise TransferError(f"cannot write into {dest}: {exc}") from None
