"""The start-up timeline: when each stage of a cold start ended, and how much download was hidden.

Times are seconds since the process started (read from /proc, so interpreter start-up counts).
Stages, in the order a Model-class server reaches them:

    process_start, prefetch_start, server_listening, import_end, init_end, prefetch_end,
    load_end, ready            (docker_server: server_start instead of import/init/load)

Hidden download time = download wall time - time the model spent blocked waiting for it (in
block_until_download_complete): the part of the download that overlapped imports and init.

The timeline is logged once as a single JSON line whose "event" is TIMELINE_EVENT (`pack run`
finds it there) and is served at /metrics (see metrics.py).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import TypedDict

TIMELINE_EVENT = "pack.startup_timeline"
# prefetch_boost: the download left background priority (someone started waiting for it).
STAGES = ("process_start", "prefetch_start", "server_listening", "server_start", "import_end",
          "init_end", "prefetch_boost", "prefetch_end", "load_end", "ready")


class DownloadSummary(TypedDict, total=False):
    """What the prefetch reports when it ends (the fetch figures only once the worker sent them)."""

    files: int
    bytes_total: int
    ok: bool
    bytes_downloaded: int
    cache_hits: int
    fetch_seconds: float


class DownloadReport(DownloadSummary, total=False):
    """The timeline document's "download": the summary plus the overlap this timeline measured."""

    wall_seconds: float | None
    blocked_seconds: float
    hidden_seconds: float | None


class _TimelineStages(TypedDict):
    event: str
    started_at: float
    stages: dict[str, float]


class TimelineDocument(_TimelineStages, total=False):
    """The one JSON line `pack run` and log pipelines read (also a comment line of /metrics)."""

    download: DownloadReport
    failure: str


def process_age_seconds() -> float:
    """Seconds since this process was created, 0.0 where /proc is unavailable."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            # Field 22 (starttime, clock ticks since boot); the command name in field 2 may hold
            # spaces, so split after its closing parenthesis.
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
        return age if 0.0 <= age < 3600.0 else 0.0
    except (OSError, ValueError, IndexError):
        return 0.0


class Timeline:
    def __init__(self, started_monotonic: float | None = None):
        now = time.monotonic()
        self._t0 = started_monotonic if started_monotonic is not None else now - process_age_seconds()
        self._wall0 = time.time() - (now - self._t0)
        self._lock = threading.Lock()
        self._marks: dict[str, float] = {"process_start": 0.0}
        self._blocked = 0.0
        self._blocking = 0  # threads currently blocked on the download
        self._block_started = 0.0
        self.download: DownloadSummary | None = None  # set by the prefetch when it ends
        self.failure: str | None = None

    # --- stages ------------------------------------------------------------------------------
    def mark(self, stage: str) -> float:
        """Record a stage once (the first time wins) and return its offset in seconds."""
        offset = time.monotonic() - self._t0
        with self._lock:
            return self._marks.setdefault(stage, offset)

    def mark_at(self, stage: str, monotonic: float) -> float:
        """Record a stage at a time.monotonic() reading taken earlier, possibly by another process
        (CLOCK_MONOTONIC is system-wide): the prefetch worker reports when it really ended."""
        with self._lock:
            return self._marks.setdefault(stage, monotonic - self._t0)

    def get(self, stage: str) -> float | None:
        with self._lock:
            return self._marks.get(stage)

    def stages(self) -> dict[str, float]:
        with self._lock:
            marks = dict(self._marks)
        known = [s for s in STAGES if s in marks]
        extra = sorted((s for s in marks if s not in STAGES), key=marks.__getitem__)
        return {s: round(marks[s], 4) for s in known + extra}

    # --- blocked time (a union over threads: two threads waiting at once count once) ---------
    def block_started(self) -> None:
        with self._lock:
            if self._blocking == 0:
                self._block_started = time.monotonic()
            self._blocking += 1

    def block_ended(self) -> None:
        with self._lock:
            self._blocking -= 1
            if self._blocking == 0:
                self._blocked += time.monotonic() - self._block_started

    @property
    def blocked_seconds(self) -> float:
        with self._lock:
            extra = time.monotonic() - self._block_started if self._blocking else 0.0
            return self._blocked + extra

    def download_wall_seconds(self) -> float | None:
        start, end = self.get("prefetch_start"), self.get("prefetch_end")
        return None if start is None or end is None else end - start

    def hidden_download_seconds(self) -> float | None:
        wall = self.download_wall_seconds()
        return None if wall is None else max(0.0, wall - self.blocked_seconds)

    # --- output -------------------------------------------------------------------------------
    def as_dict(self) -> TimelineDocument:
        wall = self.download_wall_seconds()
        doc = TimelineDocument(event=TIMELINE_EVENT, started_at=round(self._wall0, 3), stages=self.stages())
        if wall is not None or self.download is not None:
            doc["download"] = DownloadReport(
                **(self.download or {}),
                wall_seconds=None if wall is None else round(wall, 4),
                blocked_seconds=round(self.blocked_seconds, 4),
                hidden_seconds=None if wall is None else round(self.hidden_download_seconds() or 0.0, 4),
            )
        if self.failure:
            doc["failure"] = self.failure
        return doc

    def log_line(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=False)


def emit_timeline(timeline: Timeline) -> None:
    """Write the one structured line `pack run` and log pipelines look for (stderr, unprefixed)."""
    sys.stderr.write(timeline.log_line() + "\n")
    sys.stderr.flush()
