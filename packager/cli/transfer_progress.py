"""A rich progress bar for the transfer engine (host side only: rich is not in images).

Implements packager.runtime.transfer.progress.Reporter. Worker threads call `advance` about once
per MiB; rich's Progress is thread-safe and refreshes on its own timer, so the workers never wait
on the terminal.
"""

from __future__ import annotations

import threading

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..api import FetchResult, FileResult


class RichReporter:
    def __init__(self, console: Console | None = None):
        self._console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[files]}"),
            console=self._console,
            transient=False,
        )
        self._task = TaskID(0)
        self._files = 0
        self._done = 0
        self._lock = threading.Lock()

    def start(self, files: int, total_bytes: int) -> None:
        self._files = files
        self._progress.start()
        self._task = self._progress.add_task("fetch", total=total_bytes, files=f"0/{files} files")

    def advance(self, nbytes: int) -> None:
        self._progress.update(self._task, advance=nbytes)

    def file_done(self, result: FileResult) -> None:
        with self._lock:
            self._done += 1
            done = self._done
        self._progress.update(self._task, files=f"{done}/{self._files} files")
        if result.error:
            self._progress.console.print(f"[red]failed[/red] {escape(result.destination)}: "
                                         f"{escape(result.error)}")
        elif result.status != "downloaded":
            # Cached or already-present files move no bytes; count them as done on the bar.
            self._progress.update(self._task, advance=result.size)

    def retry(self, destination: str, attempt: int, cause: str) -> None:
        self._progress.console.print(f"[yellow]retry {attempt}[/yellow] {escape(destination)}: "
                                     f"{escape(cause)}")

    def finish(self, result: FetchResult) -> None:
        self._progress.stop()
