"""The events pipe between the prefetch worker and the server: one JSON object per line.

    {"event": "parsed", "entries": N, "total_bytes": B, "folders": {"<volume_folder>": count}}
    {"event": "file", "folder": "<volume_folder>", "destination": "...", "error": null|"..."}
    {"event": "end", "t": <time.monotonic()>, "error": null|"...", "result": {...}|null}

The worker writes them (EventWriter) in that order: "parsed" once, "file" per file as it lands
in place, "end" last; the server reads them (read_event). The pipe closing without an "end"
means the worker died. Both sides are this module, so the format is written down once.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Literal, TypedDict, Union

PARSED, FILE, END = "parsed", "file", "end"


class FileSummary(TypedDict):
    """One file of the fetch, as the server's /metrics needs it."""

    destination: str
    status: str  # transfer/results.py: downloaded | cached | present | failed
    size: int
    bytes_downloaded: int
    seconds: float
    error: str | None


class FetchSummary(TypedDict):
    """What the server needs of the worker's FetchResult (timeline, /metrics, the log line)."""

    bytes_downloaded: int
    bytes_total: int
    cache_hits: int
    seconds: float
    files: list[FileSummary]


class ParsedEvent(TypedDict):
    """The manifest is read: how many files, and how many in each volume_folder ("" = none)."""

    event: Literal["parsed"]
    entries: int
    total_bytes: int
    folders: dict[str, int]


class FileEvent(TypedDict):
    """One file is in place (error None) or failed."""

    event: Literal["file"]
    folder: str
    destination: str
    error: str | None


class EndEvent(TypedDict):
    """The fetch ended; `t` is the worker's time.monotonic() then (system-wide on Linux)."""

    event: Literal["end"]
    t: float | None
    error: str | None
    result: FetchSummary | None


Event = Union[ParsedEvent, FileEvent, EndEvent]  # not `|`: evaluated at run time, on Python 3.9 too


class EventWriter:
    """The worker's end of the pipe; a broken pipe (the server is gone) ends the worker."""

    def __init__(self, fd: int | None):
        self._fd = fd
        self._lock = threading.Lock()

    def parsed(self, entries: int, total_bytes: int, folders: dict[str, int]) -> None:
        self._send(ParsedEvent(event="parsed", entries=entries, total_bytes=total_bytes, folders=folders))

    def file(self, folder: str, destination: str, error: str | None) -> None:
        self._send(FileEvent(event="file", folder=folder, destination=destination, error=error))

    def end(self, t: float, error: str | None, result: FetchSummary | None) -> None:
        self._send(EndEvent(event="end", t=t, error=error, result=result))

    def _send(self, doc: Event) -> None:
        if self._fd is None:
            return
        data = (json.dumps(doc, separators=(",", ":")) + "\n").encode()
        with self._lock:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
            except BrokenPipeError:  # the server is gone: nobody needs the weights any more
                os._exit(1)


def read_event(line: bytes) -> Event | None:
    """One line from the pipe as an event; None for anything that is not one (ignored)."""
    try:
        doc: Any = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    kind = doc.get("event")
    if kind == PARSED:
        return ParsedEvent(event="parsed", entries=int(doc.get("entries", 0)),
                           total_bytes=int(doc.get("total_bytes", 0)),
                           folders={str(k): int(v) for k, v in (doc.get("folders") or {}).items()})
    if kind == FILE:
        return FileEvent(event="file", folder=str(doc.get("folder") or ""),
                         destination=str(doc.get("destination")), error=doc.get("error"))
    if kind == END:
        return EndEvent(event="end", t=doc.get("t"), error=doc.get("error"), result=doc.get("result"))
    return None
