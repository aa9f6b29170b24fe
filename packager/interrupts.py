"""Holding Ctrl-C and SIGTERM for the length of a block: around a start, so that what was started
(a process, a container) is recorded before an interrupt can unwind to the code that stops it;
around a stop, so that it finishes. Used by every stage that starts something in the foreground."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM arriving inside the block are delivered when it ends, to the handlers in
    place before it. Python runs signal handlers in the main thread whichever thread the signal
    hit, so the handlers are what must wait (a signal mask would not hold a signal another thread
    takes); Python-level handlers only, never SIG_IGN, which children would inherit."""
    if threading.current_thread() is not threading.main_thread():  # signal.signal would refuse
        yield
        return
    pending: list[int] = []
    previous = {number: signal.signal(number, lambda n, _frame: pending.append(n)) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for arrived in dict.fromkeys(pending):
            signal.raise_signal(arrived)


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
