"""The weight prefetch: one background thread, started before anything else, that fetches the
volume-mode manifest with the transfer engine while the model is imported and constructed.

Only the standard library is imported before the thread starts; the manifest parser and the
transfer engine are imported inside it, so even their import time overlaps the main thread.
Waiters (lazy_data_resolver, the docker_server supervisor, truss-transfer-cli) can wait for the
whole manifest or for one volume_folder: each folder completes as soon as its own files are
verified in place, while other folders may still be downloading.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field

from packager import constants

from .image_paths import RuntimePaths
from .prefetch_state import DONE, FAILED, RUNNING, exclusive, file_sha256, write_state
from .timeline import Timeline

log = logging.getLogger("pack.prefetch")


class PrefetchFailed(RuntimeError):
    """The manifest could not be read or some files could not be fetched; the message says which."""


@dataclass
class _Folder:
    remaining: int = 0
    error: str | None = None
    event: threading.Event = field(default_factory=threading.Event)


class Prefetch:
    def __init__(self, paths: RuntimePaths, timeline: Timeline):
        self.paths = paths
        self.timeline = timeline
        # A missing manifest means no volume-mode weights: nothing to fetch, nothing to collect.
        self.active = os.path.isfile(paths.manifest)
        self.error: str | None = None
        self.result: object | None = None  # transfer.FetchResult once finished
        self.entries = 0
        self.total_bytes = 0
        self._done = threading.Event()
        self._parsed = threading.Event()
        self._folders: dict[str, _Folder] = {}
        self._folder_of: dict[str, str] = {}  # final path -> volume folder
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if not self.active:
            self._parsed.set()
            self._done.set()

    def start(self) -> Prefetch:
        if self.active and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pack-prefetch", daemon=True)
            self._thread.start()
        return self

    # --- waiting -----------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def required(self) -> bool:
        """True when the manifest lists files, i.e. the model must collect them before use."""
        self._parsed.wait()
        return self.active and (self.entries > 0 or self.error is not None)

    def folders(self) -> list[str]:
        self._parsed.wait()
        return sorted(f for f in self._folders if f)

    @property
    def has_unfoldered_entries(self) -> bool:
        """Entries without a volume_folder can only be awaited with the whole manifest."""
        self._parsed.wait()
        return "" in self._folders

    def wait(self, timeout: float | None = None) -> None:
        if not self._done.wait(timeout):
            raise TimeoutError(f"the weights were not in place within {timeout} s")
        if self.error:
            raise PrefetchFailed(self.error)

    def wait_folder(self, name: str, timeout: float | None = None) -> str:
        self._parsed.wait()
        if self.error and not self._folders:
            raise PrefetchFailed(self.error)
        folder = self._folders.get(name)
        if folder is None:
            known = ", ".join(self.folders()) or "none"
            raise KeyError(f"volume_folder {name!r} is not in the weights manifest (folders: {known})")
        if not folder.event.wait(timeout):
            raise TimeoutError(f"volume_folder {name!r} was not in place within {timeout} s")
        if folder.error:
            raise PrefetchFailed(folder.error)
        return os.path.join(self.paths.model_cache, name)

    # --- the thread --------------------------------------------------------------------------
    def _run(self) -> None:
        self.timeline.mark("prefetch_start")
        error: str | None = None
        try:
            from .manifest import load as load_manifest

            manifest = load_manifest(self.paths.manifest)
            self._index(manifest)
            self._parsed.set()
            if manifest.entries:
                error = self._fetch(manifest)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the waiters
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._finish(error)

    def _index(self, manifest) -> None:
        from .transfer.layout import map_destination

        self.entries = len(manifest.entries)
        self.total_bytes = manifest.total_bytes
        for entry in manifest.entries:
            name = entry.volume_folder or ""
            folder = self._folders.setdefault(name, _Folder())
            folder.remaining += 1
            self._folder_of[map_destination(entry, self.paths.dest_root)] = name

    def _fetch(self, manifest) -> str | None:
        from .transfer import TransferFailed, fetch
        from .transfer.progress import LogReporter

        sha = file_sha256(self.paths.manifest)
        log.info("prefetch: %d files, %.1f MiB -> %s", self.entries, self.total_bytes / 2**20,
                 self.paths.model_cache)
        with exclusive(self.paths.prefetch_lock):
            write_state(self.paths.prefetch_state, RUNNING, sha)
            try:
                self.result = fetch(
                    manifest, self.paths.dest_root,
                    cache_dir=os.environ.get(constants.PACK_CACHE_DIR) or None,
                    reporter=_FolderTracker(self, LogReporter(log, 5.0)),
                    secrets_dir=self.paths.secrets_dir,
                    stats_path=self.paths.transfer_stats,
                )
            except TransferFailed as exc:
                self.result = exc.result
                write_state(self.paths.prefetch_state, FAILED, sha, exc.summary())
                return exc.summary()
            write_state(self.paths.prefetch_state, DONE, sha)
        return None

    def _file_done(self, destination: str, error: str | None) -> None:
        with self._lock:
            folder = self._folders.get(self._folder_of.get(destination, ""))
            if folder is None:
                return
            if error and folder.error is None:
                folder.error = f"{destination}: {error}"
            folder.remaining -= 1
            if folder.remaining <= 0:
                folder.event.set()

    def _finish(self, error: str | None) -> None:
        self.timeline.mark("prefetch_end")
        self.error = error
        result = self.result
        summary = {"files": self.entries, "bytes_total": self.total_bytes, "ok": error is None}
        if result is not None:
            summary.update(bytes_downloaded=result.bytes_downloaded, cache_hits=result.cache_hits,
                           fetch_seconds=round(result.seconds, 4))
        self.timeline.download = summary
        if error:
            log.error("prefetch failed: %s", error)
        with self._lock:
            for folder in self._folders.values():
                if folder.remaining > 0 and folder.error is None and error:
                    folder.error = error
                folder.event.set()
        self._parsed.set()
        self._done.set()


class _FolderTracker:
    """A transfer Reporter that forwards to the log reporter and completes folders as they land."""

    def __init__(self, prefetch: Prefetch, inner) -> None:
        self._prefetch = prefetch
        self._inner = inner

    def start(self, files: int, total_bytes: int) -> None:
        self._inner.start(files, total_bytes)

    def advance(self, nbytes: int) -> None:
        self._inner.advance(nbytes)

    def file_done(self, result) -> None:
        self._inner.file_done(result)
        self._prefetch._file_done(result.destination, result.error)

    def retry(self, destination: str, attempt: int, cause: str) -> None:
        self._inner.retry(destination, attempt, cause)

    def finish(self, result) -> None:
        self._inner.finish(result)
