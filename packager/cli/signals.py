"""SIGTERM handled as Ctrl-C: a foreground command (a chain, a container, a watch session) has
one shutdown path, the `except KeyboardInterrupt` that stops what it started, whichever signal
ended it. Without this, SIGTERM (systemd, `kill`, a CI runner's cancel) ends pack at once and
leaves its chainlet processes and containers running."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():  # signal.signal would refuse
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

