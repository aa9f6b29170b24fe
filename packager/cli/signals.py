"""SIGTERM handled as Ctrl-C: a foreground command (a chain, a container, a watch session) has
one shutdown path, the `except KeyboardInterrupt` that stops what it started, whichever signal
ended it. Without this, SIGTERM (systemd, `kill`, a CI runner's cancel) ends pack at once and
leaves its chainlet processes and containers running."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from packager.interrupts import STOP_SIGNALS


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


@contextmanager
def stop_requested() -> Iterator[threading.Event]:
    """Inside the block Ctrl-C and SIGTERM only set the event it yields, for a foreground wait
    that polls it: no KeyboardInterrupt then lands in the middle of an engine call (a half-read
    HTTP response on a pooled connection would fail the stop that follows)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():  # signal.signal would refuse
        yield stop
        return
    previous = {number: signal.signal(number, lambda _n, _f: stop.set()) for number in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
