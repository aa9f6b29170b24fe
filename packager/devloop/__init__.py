"""Stage 7 (development only): `pack watch`, a running dev container kept in step with the
truss's files. changes.py decides what an edit needs (pure), control.py talks to the container's
reload control, session.py runs one watch, watcher.py follows the files."""

from .changes import LIVE_CONFIG, Change, CodeFile, Patch, Rebuild, Unchanged, classify
from .control import Control, ControlUnavailable, LoadError, ReloadOutcome
from .session import (
    Building,
    LogLine,
    NotApplied,
    Reloaded,
    ReloadFailed,
    Reporter,
    Serving,
    WatchEvent,
    WatchSession,
)
from .watcher import FileWatcher, follow, start_watching, watched_paths

__all__ = [
    "LIVE_CONFIG",
    "Building",
    "Change",
    "CodeFile",
    "FileWatcher",
    "Control",
    "ControlUnavailable",
    "LoadError",
    "LogLine",
    "NotApplied",
    "Patch",
    "Rebuild",
    "ReloadFailed",
    "ReloadOutcome",
    "Reloaded",
    "Reporter",
    "Serving",
    "Unchanged",
    "WatchEvent",
    "WatchSession",
    "classify",
    "follow",
    "start_watching",
    "watched_paths",
]
