"""Build progress for people: a live view of the running steps in a terminal, plain lines in CI.

Both consume the engine's StepEvents; neither knows which builder produced them.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from ..api import StepEvent, StepEventKind
from . import output


class PlainProgress:
    """One line per step start, cache hit, finish and failure; the last log line of slow steps."""

    def __init__(self) -> None:
        self._last_log: dict[str, float] = {}

    def __call__(self, event: StepEvent) -> None:
        if event.internal and event.kind is not StepEventKind.ERROR:
            return
        if event.kind is StepEventKind.STARTED:
            output.err.print(f"[step] {escape(event.name)}", highlight=False)
        elif event.kind is StepEventKind.CACHED:
            output.err.print(f"[cached] {escape(event.name)}", highlight=False)
        elif event.kind is StepEventKind.DONE and event.duration_s:
            output.err.print(f"[done {event.duration_s:.1f}s] {escape(event.name)}", highlight=False)
        elif event.kind is StepEventKind.ERROR:
            output.err.print(f"[failed] {escape(event.name)}: {escape(event.line or '')}", highlight=False)
        elif event.kind is StepEventKind.LOG and event.line:
            # Slow steps (pip, downloads) stay visible without flooding the log.
            now = time.monotonic()
            if now - self._last_log.get(event.vertex, 0.0) >= 5.0:
                self._last_log[event.vertex] = now
                output.err.print(f"  {escape(event.line[:200])}", highlight=False)

    def close(self) -> None:
        pass


class LiveProgress:
    """A redrawn panel: finished steps collapse to one line, running ones show their last output."""

    def __init__(self) -> None:
        self._steps: OrderedDict[str, dict] = OrderedDict()
        self._live = Live(console=output.err, refresh_per_second=8, transient=False)
        self._live.start()

    def __call__(self, event: StepEvent) -> None:
        if event.internal:
            return
        step = self._steps.setdefault(event.vertex, {"name": event.name, "state": "running",
                                                     "start": time.monotonic(), "tail": deque(maxlen=3)})
        if event.kind is StepEventKind.CACHED:
            step["state"] = "cached"
        elif event.kind is StepEventKind.DONE:
            step["state"] = "done" if step["state"] != "cached" else "cached"
            step["seconds"] = event.duration_s
        elif event.kind is StepEventKind.ERROR:
            step["state"] = "failed"
        elif event.kind is StepEventKind.LOG and event.line:
            step["tail"].append(event.line[:160])
        self._live.update(self._render())

    def _render(self) -> Group:
        lines = []
        for step in self._steps.values():
            state = step["state"]
            mark = {"cached": "[dim]cached[/dim]", "done": "[green]done[/green]",
                    "failed": "[red]failed[/red]"}.get(state, "[yellow]…[/yellow]")
            elapsed = step.get("seconds") or (time.monotonic() - step["start"])
            lines.append(Text.from_markup(f"{mark} {escape(step['name'][:110])} [dim]{elapsed:.1f}s[/dim]"))
            if state == "running":
                lines += [Text.from_markup(f"    [dim]{escape(t)}[/dim]") for t in step["tail"]]
        return Group(*lines)

    def close(self) -> None:
        self._live.stop()


def make_progress(mode: str) -> PlainProgress | LiveProgress | None:
    """`auto` picks the live view in a terminal and plain lines elsewhere; `quiet` shows nothing."""
    if mode == "quiet":
        return None
    if mode == "tty" or (mode == "auto" and output.err.is_terminal):
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
