"""The weight prefetch, as seen by the server: a separate OS process started before anything
else, which fetches the volume-mode manifest with the transfer engine while the model is
imported and constructed (worker.py does the work).

Why a process and not a thread: downloading, hashing and writing 1 GiB takes the GIL for a
large share of its CPU time, and so does a CPU-bound `import torch`; in one interpreter each
slowed the other until overlapping them saved nothing. In its own process the prefetch only
competes for cores.

Spawning costs the server a pipe and a posix_spawn (no fork of the interpreter, no `subprocess`
import); everything else happens in the child. A reader thread in the server blocks on the
pipe (no GIL held while it waits) and turns the worker's events into the state waiters use:
lazy_data_resolver, the docker_server supervisor and truss-transfer-cli can wait for the whole
manifest or for one volume_folder, each folder completing as soon as its own files are verified
in place. If the worker dies (killed, crashed) the pipe closes without an "end" event and every
waiter gets a PrefetchFailed that says how it died; stop() ends and reaps it with the server.

Priority: the worker downloads at background priority (niced threads) while the model imports,
because then the import is what readiness waits for; boost() -- sent down a second pipe the first
time anyone waits for the weights, and once the model is ready -- puts it back to normal
priority, because from then on the download is what everything waits for.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from packager import constants

from ..image_paths import RuntimePaths
from ..modules import PREFETCH_WORKER
from ..timeline import DownloadSummary, Timeline
from .events import EndEvent, FetchSummary, read_event

log = logging.getLogger("pack.prefetch")
STOP_GRACE_SECONDS = 2.0


class PrefetchFailed(RuntimeError):
    """The manifest could not be read or some files could not be fetched; the message says which."""


@dataclass
class _Folder:
    remaining: int = 0
    error: str | None = None
    event: threading.Event = field(default_factory=threading.Event)


def describe_exit(status: int | None) -> str:
    if status is None:
        return "ended"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"was killed by {name}"
    return f"exited with status {status}"


class Prefetch:
    def __init__(self, paths: RuntimePaths, timeline: Timeline, pin_cache: bool = True):
        """pin_cache: this process lives as long as the destinations it fetches (the server), so
        they may be symlinks into a node cache on another filesystem (pinned for its lifetime);
        False (a short-lived caller such as truss-transfer-cli) places copies there instead."""
        self.paths = paths
        self.pin_cache = pin_cache
        self.timeline = timeline
        # A missing manifest means no volume-mode weights: nothing to fetch, nothing to collect.
        self.active = os.path.isfile(paths.manifest)
        self.error: str | None = None
        self.result: FetchSummary | None = None  # the worker's FetchResult summary once finished
        self.entries = 0
        self.total_bytes = 0
        self.pid: int | None = None
        self.returncode: int | None = None
        self._done = threading.Event()
        self._parsed = threading.Event()
        self._folders: dict[str, _Folder] = {}
        self._lock = threading.Lock()
        self._reaped = threading.Event()
        self._thread: threading.Thread | None = None
        self._cache_pin: str | None = None
        self._control_fd: int | None = None
        if not self.active:
            self._parsed.set()
            self._done.set()
            self._reaped.set()

    def start(self) -> Prefetch:
        if not self.active or self.pid is not None or self._done.is_set():
            return self
        self.timeline.mark("prefetch_start")
        argv = [sys.executable, "-m", PREFETCH_WORKER, "--parent", str(os.getpid())]
        if self.paths.model_cache != RuntimePaths.from_env().model_cache:
            argv += ["--model-cache", self.paths.model_cache]
        cache_dir = os.environ.get(constants.PACK_CACHE_DIR)
        if cache_dir and self.pin_cache:
            # The server holds the pin set of the node cache for its whole life, so the blobs its
            # destinations link to are never evicted (see transfer/cache.py).
            try:
                from ..cache_pins import hold_instance

                self._cache_pin = hold_instance(cache_dir)
                argv += ["--cache-instance", self._cache_pin]
            except OSError as exc:
                log.warning("node cache %s: cannot register this server: %s", cache_dir, exc)
        read_fd, write_fd = os.pipe()
        control_read, control_write = os.pipe()
        argv += ["--events-fd", str(write_fd), "--control-fd", str(control_read)]
        try:
            os.set_inheritable(write_fd, True)
            os.set_inheritable(control_read, True)
            self.pid = os.posix_spawn(sys.executable, argv, os.environ)
        except OSError as exc:
            os.close(read_fd)
            os.close(control_write)
            self._finish(f"cannot start the prefetch process: {exc}", None)
            self._reaped.set()
            return self
        finally:
            os.close(write_fd)
            os.close(control_read)
        self._control_fd = control_write
        self._thread = threading.Thread(target=self._read, args=(read_fd,), name="pack-prefetch",
                                        daemon=True)
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

    def boost(self) -> None:
        """Someone now waits for the weights: the worker leaves background priority (once)."""
        with self._lock:
            fd, self._control_fd = self._control_fd, None
        if fd is None:
            return
        if not self._done.is_set():
            self.timeline.mark("prefetch_boost")
            try:
                os.write(fd, b"boost\n")
            except OSError:  # the worker already exited: nothing left to speed up
                pass
        os.close(fd)

    def wait(self, timeout: float | None = None) -> None:
        self.boost()
        if not self._done.wait(timeout):
            raise TimeoutError(f"the weights were not in place within {timeout} s")
        if self.error:
            raise PrefetchFailed(self.error)

    def wait_folder(self, name: str, timeout: float | None = None) -> str:
        self.boost()
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

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """End the worker if it still runs (server shutdown) and reap it: no orphan, no zombie."""
        self.boost()  # closes the control pipe
        pid = self.pid
        if pid is None or self._reaped.is_set():
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if self._reaped.wait(grace):
                break

    # --- the reader thread -------------------------------------------------------------------
    def _read(self, fd: int) -> None:
        end: EndEvent | None = None
        try:
            with os.fdopen(fd, "rb", buffering=0) as pipe:
                buffered = b""
                while True:
                    chunk = pipe.read(65536)
                    if not chunk:
                        break
                    buffered += chunk
                    *lines, buffered = buffered.split(b"\n")
                    for line in lines:
                        event = read_event(line)
                        if event is None:
                            continue
                        if event["event"] == "parsed":
                            self._manifest_parsed(event["entries"], event["total_bytes"], event["folders"])
                        elif event["event"] == "file":
                            self._file_done(event["folder"], event["destination"], event["error"])
                        else:
                            end = event
        except OSError as exc:
            log.debug("prefetch pipe: %s", exc)
        if end is None:
            status = self._reap()
            self._finish(f"the prefetch process (pid {self.pid}) {describe_exit(status)} "
                         "before the weights were in place", None)
            return
        self._finish(end["error"], end["result"], end["t"])
        self._reap()

    def _manifest_parsed(self, entries: int, total_bytes: int, folders: dict[str, int]) -> None:
        with self._lock:
            self.entries = entries
            self.total_bytes = total_bytes
            for name, count in folders.items():
                self._folders.setdefault(name, _Folder()).remaining += count
        self._parsed.set()

    def _reap(self) -> int | None:
        """Wait for the worker's exit status (None if someone else, e.g. PID 1's reaper, took it)."""
        try:
            if self.pid is not None:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            pass
        finally:
            self._reaped.set()
        return self.returncode

    def _file_done(self, name: str, destination: str, error: str | None) -> None:
        with self._lock:
            folder = self._folders.get(name)
            if folder is None:
                return
            if error and folder.error is None:
                folder.error = f"{destination}: {error}"
            folder.remaining -= 1
            if folder.remaining <= 0:
                folder.event.set()

    def _finish(self, error: str | None, result: FetchSummary | None, ended: float | None = None) -> None:
        if ended is not None and ended <= time.monotonic():
            self.timeline.mark_at("prefetch_end", ended)
        else:
            self.timeline.mark("prefetch_end")
        self.error = error
        self.result = result
        summary = DownloadSummary(files=self.entries, bytes_total=self.total_bytes, ok=error is None)
        if result is not None:
            summary["bytes_downloaded"] = result["bytes_downloaded"]
            summary["cache_hits"] = result["cache_hits"]
            summary["fetch_seconds"] = round(float(result["seconds"]), 4)
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
