"""Following the files of a watched truss: what to watch, what to ignore, and the loop that hands
each batch of edits to the session.

The watch starts before the first build, so an edit made while the image builds or the container
starts is applied once it serves, never lost. Edits are batched by quiet time: a batch is handed
over once no new change arrived for STEP_MS (an editor saving several files, a `git checkout`,
make one reload), and at the latest after MAX_BATCH_MS of continuous changes.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from packager.plan.context_sources import SKIP_NAMES, SKIP_SUFFIXES
from packager.plan.model import BuildPlan

from .session import WatchSession

STEP_MS = 100
MAX_BATCH_MS = 1600
# How often the watch thread looks at its stop flag, and says it is watching.
_TICK_MS = 200
# Editor and tool droppings that are never an edit of the truss (vim's swap and probe files,
# emacs lock files, backup files, pack's own lock-file temporaries).
_TEMP_SUFFIXES = (".swp", ".swx", ".swo", "~", ".tmp")
_TEMP_PREFIXES = (".#", ".pack.lock.")
_TEMP_NAMES = frozenset({"4913"})


def watched_paths(plan: BuildPlan) -> tuple[Path, ...]:
    """The truss dir, and whatever outside it the plan copies or reads (external package dirs,
    a --config file elsewhere)."""
    truss_dir = Path(plan.sources.truss_dir)
    paths = [truss_dir]
    for extra in (*plan.sources.package_dirs, plan.sources.config_file):
        path = Path(extra)
        if not path.is_relative_to(truss_dir) and not any(path.is_relative_to(p) for p in paths):
            paths.append(path)
    return tuple(paths)


def is_ignored(path: Path, skip_names: frozenset[str] = SKIP_NAMES, skip_suffixes: tuple[str, ...] = SKIP_SUFFIXES
               ) -> bool:
    """Editor temporaries, and what no build copies (the plan's skip rules: VCS data, caches)."""
    name = path.name
    if name in _TEMP_NAMES or name.endswith(_TEMP_SUFFIXES) or name.startswith(_TEMP_PREFIXES):
        return True
    return any(part in skip_names for part in path.parts) or name.endswith(skip_suffixes)


def net_edits(changes: Iterable[tuple[int, str]], added: int) -> set[Path]:
    """The paths a batch changed, less those created and removed within it (an editor's or
    `sed -i`'s temporary file): `added` is the watcher's code for a created path."""
    changes = list(changes)
    created = {raw for kind, raw in changes if kind == added}
    return {Path(raw) for _kind, raw in changes if raw not in created or os.path.lexists(raw)}


class FileWatcher:
    """A thread following `paths`; batches of edited paths on `batches`. `watching` is set once
    the operating system reports changes to it (inotify is set up)."""

    def __init__(self, paths: tuple[Path, ...], ignored: Callable[[Path], bool]):
        self.paths = paths
        self.batches: queue.Queue[set[Path]] = queue.Queue()
        self.watching = threading.Event()
        self._ignored = ignored
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pack-watch-files", daemon=True)

    def start(self) -> FileWatcher:
        self._thread.start()
        if not self.watching.wait(30):
            raise RuntimeError(f"the file watch on {', '.join(map(str, self.paths))} did not start")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        from watchfiles import Change, watch

        # Yielding on every tick (an empty set) tells that the watch is set up, and lets the
        # thread see its stop flag; signals stay with the main thread.
        for changes in watch(*self.paths, step=STEP_MS, debounce=MAX_BATCH_MS, stop_event=self._stop,
                             rust_timeout=_TICK_MS, yield_on_timeout=True, raise_interrupt=False,
                             watch_filter=lambda _change, raw: not self._ignored(Path(raw))):
            self.watching.set()
            edits = net_edits(changes, Change.added)
            if edits:
                self.batches.put(edits)


def start_watching(plan: BuildPlan) -> FileWatcher:
    ignored = partial(is_ignored, skip_names=plan.sources.skip_names, skip_suffixes=plan.sources.skip_suffixes)
    return FileWatcher(watched_paths(plan), ignored).start()


def rewatch_session(session: WatchSession) -> Callable[[FileWatcher], FileWatcher | None]:
    """For follow(): a new watch when a rebuild changed what the session's truss reads (a new
    external package dir), else None."""
    def again(current: FileWatcher) -> FileWatcher | None:
        plan = session.plan
        if plan is None or watched_paths(plan) == current.paths:
            return None
        return start_watching(plan)

    return again


def follow(apply: Callable[[set[Path]], object], watcher: FileWatcher, stop: threading.Event,
           rewatch: Callable[[FileWatcher], FileWatcher | None] | None = None) -> None:
    """Hand each batch of edits to `apply` until `stop` is set (or KeyboardInterrupt); after each,
    `rewatch` may replace the watch (the new one starts before the old one stops)."""
    try:
        while not stop.is_set():
            try:
                edits = watcher.batches.get(timeout=0.2)
            except queue.Empty:
                continue
            apply(edits)
            replacement = rewatch(watcher) if rewatch is not None else None
            if replacement is not None:
                watcher.stop()
                watcher = replacement
    finally:
        watcher.stop()
