"""Structured build progress: what a backend reports while it builds.

Backends translate their own output (BuildKit's plain progress, the classic builder's
"Step N/M" stream) into these events so the CLI can draw a live view or print plain lines
without knowing which builder ran. Library code never prints; it calls the callback.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


class StepEventKind(enum.Enum):
    STARTED = "started"  # a step began (or was announced; CACHED may follow at once)
    LOG = "log"  # one output line of a running step
    CACHED = "cached"  # the step's result came from the build cache
    DONE = "done"  # the step finished
    ERROR = "error"  # the step failed; `line` holds the builder's error message


@dataclass(frozen=True)
class StepEvent:
    kind: StepEventKind
    vertex: str  # the builder's own id for the step: BuildKit's "#5", classic "3"
    name: str  # e.g. "[2/4] RUN pip install -r requirements.txt" or "[internal] load .dockerignore"
    step: int | None = None  # Dockerfile step number within its stage, when the builder says
    total: int | None = None  # number of steps in that stage
    stage: str | None = None  # named build stage ("cache_warmer"), None for the final/unnamed one
    cached: bool = False
    line: str | None = None  # the log line (LOG) or error message (ERROR)
    duration_s: float | None = None  # set on DONE when the builder reports it

    @property
    def internal(self) -> bool:
        """Builder housekeeping (loading the Dockerfile, exporting) rather than a Dockerfile step."""
        return self.step is None


ProgressCallback = Callable[[StepEvent], None]


def ignore_progress(_event: StepEvent) -> None:
    """The default callback: builds are silent unless someone listens."""
