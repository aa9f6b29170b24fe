"""The weight prefetch's own OS process: python -m packager.runtime.prefetch.worker --events-fd N

The entrypoint spawns it as its very first act (process.Prefetch.start) so the download, the
sha256 verification and the transfer engine's own imports run in another interpreter: they never
take the GIL from the user's `import torch`, which a prefetch thread inside the server did.

Channels back to the server process:

* events on the pipe `--events-fd` (how the server wakes up): "parsed" once the manifest is
  read, "file" for each file in place, "end" with the result (events.py, one JSON object per
  line). The pipe closing without an "end" means the worker died: the server reports that.
* the prefetch lock and state file of state.py, exactly as before (held for the whole
  fetch; "running" -> "done"/"failed" with the error), which truss-transfer-cli coordinates on;
* the transfer stats JSON file (image_paths.transfer_stats).

And one channel in: the pipe `--control-fd`, on which the server writes "boost" once someone
waits for the weights (or the model is ready). Until then the download threads run niced
($PACK_PREFETCH_NICE, default 19): the user's import is on the critical path and keeps its core;
from then on the download is, and runs at normal priority (transfer/engine.py, Priority).

The worker never outlives the server: it asks the kernel for SIGKILL when its parent dies
(PR_SET_PDEATHSIG, Linux) and also exits when it finds itself re-parented or the pipe broken.
Exit status: 0 when every file is in place, 1 otherwise.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from packager import constants

from ..image_paths import RuntimePaths
from .events import EventWriter, FetchSummary, FileSummary

if TYPE_CHECKING:  # the transfer engine is imported once the worker runs (see run)
    from ..transfer.engine import Priority
    from ..transfer.progress import Reporter
    from ..transfer.results import FetchResult, FileResult

log = logging.getLogger("pack.prefetch")
PARENT_POLL_SECONDS = 0.5
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Never outlive the server: SIGKILL from the kernel when it dies, a poll as a fallback."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError, ImportError):
        pass
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="pack-prefetch-parent", daemon=True).start()


class FolderEvents:
    """A transfer Reporter: logs progress and announces each file as it lands in place."""

    def __init__(self, inner: Reporter, events: EventWriter, folder_of: dict[str, str]):
        self._inner, self._events, self._folder_of = inner, events, folder_of

    def start(self, files: int, total_bytes: int) -> None:
        self._inner.start(files, total_bytes)

    def advance(self, nbytes: int) -> None:
        self._inner.advance(nbytes)

    def file_done(self, result: FileResult) -> None:
        self._inner.file_done(result)
        self._events.file(self._folder_of.get(result.destination, ""), result.destination, result.error)

    def retry(self, destination: str, attempt: int, cause: str) -> None:
        self._inner.retry(destination, attempt, cause)

    def finish(self, result: FetchResult) -> None:
        self._inner.finish(result)


def summarize(result: FetchResult | None) -> FetchSummary | None:
    """What the server needs of a FetchResult (timeline, /metrics, log line)."""
    if result is None:
        return None
    return FetchSummary(
        bytes_downloaded=result.bytes_downloaded, bytes_total=result.bytes_total,
        cache_hits=result.cache_hits, seconds=result.seconds,
        files=[FileSummary(destination=f.destination, status=f.status, size=f.size,
                           bytes_downloaded=f.bytes_downloaded, seconds=f.seconds, error=f.error)
               for f in result.files],
    )


# benchmarks/coldstart.py, 1 GiB + a 3 s CPU-bound import on 2 cores: ready 4.61 s at nice 0
# (the import waited 0.91 s for a core), 3.82 s at nice 19 (0.13 s), against a bound of 4.00 s.
DEFAULT_NICE = 19


def background_nice(env: dict[str, str]) -> int:
    raw = env.get(constants.PACK_PREFETCH_NICE, "").strip()
    try:
        return max(0, min(19, int(raw))) if raw else DEFAULT_NICE
    except ValueError:
        log.warning("%s=%r is not an integer; using %d", constants.PACK_PREFETCH_NICE, raw, DEFAULT_NICE)
        return DEFAULT_NICE


def listen_for_boost(fd: int | None, priority: Priority) -> None:
    """A thread of the main (normal-priority) thread: boosted workers inherit its priority."""
    if fd is None:
        priority.boost()
        return

    def listen() -> None:
        buf = b""
        while b"boost" not in buf:
            try:
                chunk = os.read(fd, 64)
            except OSError:
                chunk = b""
            if not chunk:  # the server closed its end: nobody will ask, so stop holding back
                break
            buf = (buf + chunk)[-64:]
        priority.boost()

    threading.Thread(target=listen, name="pack-prefetch-control", daemon=True).start()


def run(paths: RuntimePaths, events: EventWriter, cache_instance: str | None = None,
        priority: Priority | None = None) -> str | None:
    """Fetch the manifest under the prefetch lock; return the error (None when all is in place)."""
    from ..manifest import load as load_manifest
    from ..transfer import TransferFailed, TransferSettings, fetch
    from ..transfer.api import plan_targets
    from ..transfer.progress import LogReporter
    from .state import (
        DONE,
        FAILED,
        RUNNING,
        exclusive,
        file_sha256,
        write_state,
    )

    result: FetchResult | None = None
    error: str | None = None
    try:
        manifest = load_manifest(paths.manifest)
        folders: dict[str, int] = {}
        folder_of: dict[str, str] = {}
        for target in plan_targets(manifest, paths.dest_root):
            name = target.entry.volume_folder or ""
            folders[name] = folders.get(name, 0) + 1
            folder_of[target.final] = name
        events.parsed(len(manifest.entries), manifest.total_bytes, folders)
        if manifest.entries:
            sha = file_sha256(paths.manifest)
            log.info("prefetch: %d files, %.1f MiB -> %s", len(manifest.entries),
                     manifest.total_bytes / 2**20, paths.model_cache)
            with exclusive(paths.prefetch_lock):
                write_state(paths.prefetch_state, RUNNING, sha)
                try:
                    result = fetch(
                        manifest, paths.dest_root,
                        cache_dir=os.environ.get(constants.PACK_CACHE_DIR) or None,
                        cache_instance=cache_instance,
                        reporter=FolderEvents(LogReporter(log, 5.0), events, folder_of),
                        secrets_dir=paths.secrets_dir,
                        stats_path=paths.transfer_stats,
                        settings=TransferSettings(worker_nice=background_nice(dict(os.environ))),
                        priority=priority,
                        markers_dir=paths.markers_dir,
                    )
                except TransferFailed as exc:
                    result = exc.result
                    error = exc.summary()
                    write_state(paths.prefetch_state, FAILED, sha, error)
                else:
                    write_state(paths.prefetch_state, DONE, sha)
    except Exception as exc:  # noqa: BLE001 - any failure must reach the waiters
        error = f"{type(exc).__name__}: {exc}"
    events.end(time.monotonic(), error, summarize(result))
    return error


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="pack-prefetch")
    parser.add_argument("--events-fd", type=int, default=None)
    parser.add_argument("--parent", type=int, default=None, help="exit when this pid is gone")
    parser.add_argument("--model-cache", default=None, help="relocate /app/model_cache")
    parser.add_argument("--control-fd", type=int, default=None,
                        help="read 'boost' here to leave background priority (none: never niced)")
    parser.add_argument("--cache-instance", default=None,
                        help="the server's pin set in the node cache (transfer/cache.py)")
    args = parser.parse_args(argv)
    if args.parent:
        die_with_parent(args.parent)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    paths = RuntimePaths.from_env()
    if args.model_cache:
        import dataclasses

        paths = dataclasses.replace(paths, model_cache=os.path.abspath(args.model_cache))
    events = EventWriter(args.events_fd)
    from ..transfer.engine import Priority

    priority = Priority()
    listen_for_boost(args.control_fd, priority)
    error = run(paths, events, args.cache_instance, priority)
    if error:
        log.error("prefetch failed: %s", error)
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
