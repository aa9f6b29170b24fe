"""Build progress for people: a live view of the running steps in a terminal, plain lines in CI.

Both consume the engine's StepEvents; neither knows which builder produced them.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager

from typing import TYPE_CHECKING, Any

from .. import api
from . import output

if TYPE_CHECKING:
    from rich.console import Group

    from ..api import StepEvent


class PlainProgress:
    """One line per step start, cache hit, finish and failure; the last log line of slow steps."""

    def __init__(self) -> None:
        self._last_log: dict[str, float] = {}

    def __call__(self, event: StepEvent) -> None:
        if event.internal and event.kind is not api.StepEventKind.ERROR:
            return
        if event.kind is api.StepEventKind.STARTED:
            output.line([f"[step] {event.name}"])
        elif event.kind is api.StepEventKind.CACHED:
            output.line([f"[cached] {event.name}"])
        elif event.kind is api.StepEventKind.DONE and event.duration_s:
            output.line([f"[done {event.duration_s:.1f}s] {event.name}"])
        elif event.kind is api.StepEventKind.ERROR:
            output.line([f"[failed] {event.name}: {event.line or ''}"])
        elif event.kind is api.StepEventKind.LOG and event.line:
            # Slow steps (pip, downloads) stay visible without flooding the log.
            now = time.monotonic()
            if now - self._last_log.get(event.vertex, 0.0) >= 5.0:
                self._last_log[event.vertex] = now
                output.line([f"  {event.line[:200]}"])

    def close(self) -> None:
        pass


class LiveProgress:
    """A redrawn panel: finished steps collapse to one line, running ones show their last output."""

    def __init__(self) -> None:
        from rich.live import Live

        self._steps: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._live = Live(console=output.console(), refresh_per_second=8, transient=False)
        self._live.start()

    def __call__(self, event: StepEvent) -> None:
        if event.internal:
            return
        step = self._steps.setdefault(event.vertex, {"name": event.name, "state": "running",
                                                     "start": time.monotonic(), "tail": deque(maxlen=3)})
        if event.kind is api.StepEventKind.CACHED:
            step["state"] = "cached"
        elif event.kind is api.StepEventKind.DONE:
            step["state"] = "done" if step["state"] != "cached" else "cached"
            step["seconds"] = event.duration_s
        elif event.kind is api.StepEventKind.ERROR:
            step["state"] = "failed"
        elif event.kind is api.StepEventKind.LOG and event.line:
            step["tail"].append(event.line[:160])
        self._live.update(self._render())

    def _render(self) -> Group:
        from rich.console import Group
        from rich.text import Text

        lines = []
        for step in self._steps.values():
            state = step["state"]
            mark = {"cached": ("cached", "dim"), "done": ("done", "green"),
                    "failed": ("failed", "red")}.get(state, ("…", "yellow"))
            elapsed = step.get("seconds") or (time.monotonic() - step["start"])
            lines.append(Text.assemble(mark, f" {step['name'][:110]} ", (f"{elapsed:.1f}s", "dim")))
            if state == "running":
                lines += [Text.assemble(("    " + t, "dim")) for t in step["tail"]]
        return Group(*lines)

    def close(self) -> None:
        self._live.stop()


def make_progress(mode: str) -> PlainProgress | LiveProgress | None:
    """`auto` picks the live view in a terminal (not under CI=true) and plain lines elsewhere;
    `quiet` shows nothing."""
    if mode == "quiet":
        return None
    if mode == "tty" or (mode == "auto" and output.live_view_allowed(sys.stderr)):
        return LiveProgress()
    return PlainProgress()


@contextmanager
def progress_view(mode: str) -> Iterator[PlainProgress | LiveProgress | None]:
    """make_progress(mode) for the length of a build (a live view is closed even on failure)."""
    view = make_progress(mode)
    try:
        yield view
    finally:
        if view is not None:
            view.close()
