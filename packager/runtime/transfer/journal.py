"""The resume journal kept beside a partial file: which byte ranges are complete.

Line 1 is a JSON header naming what is being downloaded (size + digest + source); every further
line is "<start> <end>" appended after that range's bytes were written with pwrite. A kill -9
keeps both the written bytes and the appended line (they live in the page cache), so the next
run fetches only the missing ranges. A torn last line is ignored. A header that does not match
the entry (the manifest changed) discards the journal and its partial file.

This is what makes a partial file safe to keep: its size says nothing (it is pre-sized with
holes), only the journal does, and the final digest check is the backstop for anything the
journal got wrong (e.g. a power loss that kept the journal but not the data).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TypedDict


@dataclass(frozen=True)
class Interval:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start


def merge(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for iv in sorted(intervals, key=lambda i: i.start):
        if merged and iv.start <= merged[-1].end:
            if iv.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, iv.end)
        else:
            merged.append(iv)
    return merged


def missing(size: int, done: list[Interval]) -> list[Interval]:
    gaps, pos = [], 0
    for iv in merge(done):
        if iv.start > pos:
            gaps.append(Interval(pos, iv.start))
        pos = max(pos, iv.end)
    if pos < size:
        gaps.append(Interval(pos, size))
    return gaps


class JournalHeader(TypedDict):
    """What is being downloaded; a journal with another header is not resumed."""

    size: int
    algorithm: str
    digest: str
    source: str


class Journal:
    def __init__(self, path: str, header: JournalHeader):
        self.path = path
        self._size = header["size"]
        self._header: dict[str, object] = {**header, "v": 1}
        self._fd: int | None = None
        self.enabled = True
        self._found = False  # load() found a journal file (possibly stale or foreign)

    def disable(self) -> None:
        """No journal file for this attempt: a download that is a single range has nothing to
        resume from (a range is recorded only once complete, just before the file is verified),
        so its journal would cost three syscalls and a file for nothing. A journal file that
        load() found (stale, foreign, or describing a partial file that was just reset) is deleted
        now: left beside the reset partial file it could vouch for its zero-filled bytes after a
        kill."""
        self.close()
        self.enabled = False
        if self._found:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self._found = False

    def load(self) -> list[Interval]:
        """Completed ranges recorded by an earlier run of the same download ([] if none)."""
        try:
            with open(self.path, encoding="utf-8") as fh:
                lines = fh.read().split("\n")
        except FileNotFoundError:
            return []
        self._found = True
        try:
            if json.loads(lines[0]) != self._header:
                return []
        except json.JSONDecodeError:
            return []
        size = self._size
        done = []
        # The last element is "" after a complete line, or a torn record after a kill: skip it.
        for line in lines[1:-1]:
            parts = line.split()
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                continue
            start, end = int(parts[0]), int(parts[1])
            if 0 <= start < end <= size:
                done.append(Interval(start, end))
        return merge(done)

    def open(self, fresh: bool) -> None:
        """Start appending; `fresh` truncates it and writes the header first."""
        if not self.enabled:
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if fresh else 0)
        self._fd = os.open(self.path, flags, 0o644)
        if fresh:
            os.write(self._fd, (json.dumps(self._header, sort_keys=True) + "\n").encode())

    def record(self, start: int, end: int) -> None:
        # One small O_APPEND write per range: atomic with respect to other writers in practice.
        if self._fd is not None:
            os.write(self._fd, f"{start} {end}\n".encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
