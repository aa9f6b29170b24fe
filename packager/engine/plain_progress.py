"""Parse BuildKit's `--progress=plain` output into StepEvents.

The format (same in the 20.10 built-in client and in buildx) is one line per update, prefixed
with the vertex number; updates of parallel steps interleave:

    #5 [2/4] RUN pip install -r requirements.txt     <- announces vertex 5 (repeated later)
    #5 sha256:514d...                                 <- 20.10 only, ignored
    #5 0.512 Collecting numpy                         <- log line, seconds since the step began
    #5 transferring context: 2B done                  <- status line of internal steps
    #5 CACHED | #5 DONE 3.2s | #5 ERROR: <message> | #5 CANCELED
    ------                                            <- after a failure: an excerpt block,
     > [4/4] RUN false:                                  then the final error line(s)
    ------
    ERROR: failed to solve: ...                       <- buildx; 20.10 prints the bare message

rawjson would be richer but the 20.10 client does not offer it; plain works everywhere.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from packager.engine.events import StepEvent, StepEventKind
from packager.engine.failures import FAILURE_TAIL_LINES

_VERTEX = re.compile(r"^#(\d+) (.*)$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_DONE = re.compile(r"^DONE(?: (\d+(?:\.\d+)?)s)?$")
_ERROR = re.compile(r"^ERROR(?::\s*(.*))?$")
_LOG = re.compile(r"^(\d+\.\d+)(?: (.*))?$")
# BuildKit pads step numbers in stages of 10+ steps: "[stage-0  2/14]", "[ 3/9]".
_STEP_NAME = re.compile(r"^\[(?:(?P<stage>\S+) +)? *(?P<step>\d+)/(?P<total>\d+)\] ")


@dataclass
class _Vertex:
    id: str
    name: str = ""
    step: int | None = None
    total: int | None = None
    stage: str | None = None
    cached: bool = False
    done: bool = False
    error: str | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=FAILURE_TAIL_LINES))


def _is_from(name: str) -> bool:
    return bool(re.match(r"^\[[^\]]*\] FROM ", name))


@dataclass(frozen=True)
class PlainFailure:
    step: str | None  # the failing vertex's name, None when the build failed before any step
    message: str
    log_tail: list[str]


class PlainProgressParser:
    """Feed lines in order; get events back; ask for the failure after a non-zero exit."""

    def __init__(self) -> None:
        self._vertices: dict[str, _Vertex] = {}
        self._order: list[str] = []
        self._failed: _Vertex | None = None
        # Lines outside any vertex (the final "failed to solve" message and friends).
        self._trailer: deque[str] = deque(maxlen=FAILURE_TAIL_LINES)
        self._in_excerpt = False

    def feed(self, raw: str) -> list[StepEvent]:
        line = raw.rstrip("\r\n")
        match = _VERTEX.match(line)
        if not match:
            if line.strip() == "------":
                self._in_excerpt = not self._in_excerpt
            elif line.strip() and not self._in_excerpt:
                self._trailer.append(line)
            return []
        self._in_excerpt = False
        vid, rest = match.group(1), match.group(2)
        vertex = self._vertices.get(vid)
        if vertex is None:
            vertex = self._vertices[vid] = _Vertex(f"#{vid}")
            self._order.append(vid)

        if not vertex.name:
            if _DIGEST.match(rest):
                return []
            vertex.name = rest
            step = _STEP_NAME.match(rest)
            if step:
                vertex.step, vertex.total = int(step.group("step")), int(step.group("total"))
                vertex.stage = step.group("stage")
            return [self._event(StepEventKind.STARTED, vertex)]
        if rest == vertex.name or _DIGEST.match(rest):
            return []  # re-announcement when output of parallel steps interleaves
        if rest == "CACHED":
            vertex.cached = True
            return [self._event(StepEventKind.CACHED, vertex)]
        done = _DONE.match(rest)
        if done:
            vertex.done = True
            seconds = float(done.group(1)) if done.group(1) else None
            return [self._event(StepEventKind.DONE, vertex, duration_s=seconds)]
        error = _ERROR.match(rest)
        if error:
            vertex.error = (error.group(1) or "failed").strip()
            self._failed = self._failed or vertex
            return [self._event(StepEventKind.ERROR, vertex, line=vertex.error)]
        if rest == "CANCELED":
            return []
        log = _LOG.match(rest)
        text = (log.group(2) or "") if log else rest
        vertex.tail.append(text)
        return [self._event(StepEventKind.LOG, vertex, line=text)]

    @staticmethod
    def _event(
        kind: StepEventKind, v: _Vertex, *, line: str | None = None, duration_s: float | None = None
    ) -> StepEvent:
        return StepEvent(
            kind=kind, vertex=v.id, name=v.name, step=v.step, total=v.total, stage=v.stage,
            cached=v.cached, line=line, duration_s=duration_s,
        )

    def steps(self) -> tuple[list[str], list[str]]:
        """(built, cached) Dockerfile step names, in announcement order."""
        built: list[str] = []
        cached: list[str] = []
        for vid in self._order:
            v = self._vertices[vid]
            # FROM only names the base; it neither builds nor hits the cache.
            if v.step is None or _is_from(v.name):
                continue
            (cached if v.cached else built).append(v.name)
        return built, cached

    def failure(self) -> PlainFailure:
        """What went wrong, for a build that exited non-zero."""
        trailer = [line for line in self._trailer if line.strip()]
        if self._failed is not None:
            v = self._failed
            return PlainFailure(v.name, v.error or "failed", list(v.tail))
        # Failed before any step ran: Dockerfile parse errors, a missing base image, a bad flag.
        message = trailer[-1] if trailer else "the build failed without saying why"
        message = re.sub(r"^(ERROR: )?", "", message)
        return PlainFailure(None, message, trailer[:-1][-FAILURE_TAIL_LINES:])
