"""The classic (pre-BuildKit) builder through the Docker SDK: the fallback every engine has.

What is lost, and enforced up front by preflight (MissingCapabilityError instead of the
daemon's "the --mount option requires BuildKit"): secret mounts and build secrets, cache
mounts, other RUN --mount kinds, COPY --chmod/--link, heredocs. Stages also build one after
another instead of in parallel, and unused stages are built too.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from packager.engine.buildkit import failure_hint, short_error
from packager.engine.base import DockerEngineBase
from packager.engine.detection import EngineInfo
from packager.engine.docker_api import image_tags_and_size, open_client
from packager.engine.events import (
    ProgressCallback,
    StepEvent,
    StepEventKind,
    ignore_progress,
)
from packager.engine.failures import FAILURE_TAIL_LINES, BuildFailedError
from packager.engine.images import BuiltImage
from packager.engine.preflight import check_build_inputs
from packager.engine.requests import BuildRequest
from packager.errors import EngineError

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_LAYER = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
# The builder's own bookkeeping lines, not output of the step.
_HOUSEKEEPING = (" ---> Running in ", "Removing intermediate", "Successfully built ", "Successfully tagged ")


@dataclass
class _Step:
    number: int
    total: int
    name: str
    cached: bool = False
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=FAILURE_TAIL_LINES))


class ClassicStreamParser:
    """Turns the classic builder's JSON stream into StepEvents.

    Stream chunks are not line-aligned ("Step 1/2 : FROM x" and its "\\n" arrive apart), so
    text is buffered until a newline.
    """

    def __init__(self) -> None:
        self.current: _Step | None = None
        self.steps: list[_Step] = []
        self.image_id: str | None = None
        self.error: str | None = None
        self._buffer = ""

    def feed(self, chunk: Mapping[str, Any]) -> list[StepEvent]:
        events: list[StepEvent] = []
        if "errorDetail" in chunk or "error" in chunk:
            detail = chunk.get("errorDetail") or {}
            self.error = str(detail.get("message") or chunk.get("error") or "build failed")
            events += self._flush()
            if self.current is not None:
                events.append(self._event(StepEventKind.ERROR, self.current, line=self.error))
            return events
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("ID"):
            self.image_id = str(aux["ID"])
        text = chunk.get("stream")
        if isinstance(text, str):
            self._buffer += text
            while "\n" in self._buffer:
                line, self._buffer = self._buffer.split("\n", 1)
                events += self._line(line)
        return events

    def layer_steps(self) -> list[_Step]:
        """Steps other than FROM (which only names the base), as BuildKit's parser reports them."""
        return [s for s in self.steps if not re.match(r"^\[\d+/\d+\] FROM ", s.name, re.IGNORECASE)]

    def _flush(self) -> list[StepEvent]:
        line, self._buffer = self._buffer, ""
        return self._line(line) if line else []

    def finish(self) -> list[StepEvent]:
        events = self._flush()
        if self.current is not None and self.error is None:
            events.append(self._event(StepEventKind.DONE, self.current))
        return events

    def _line(self, line: str) -> list[StepEvent]:
        match = _STEP.match(line)
        if match:
            events = []
            if self.current is not None:
                events.append(self._event(StepEventKind.DONE, self.current))
            number, total, instruction = int(match.group(1)), int(match.group(2)), match.group(3)
            self.current = _Step(number, total, f"[{number}/{total}] {instruction}")
            self.steps.append(self.current)
            return events + [self._event(StepEventKind.STARTED, self.current)]
        step = self.current
        if step is None or not line.strip():
            return []
        if line.strip() == "---> Using cache":
            step.cached = True
            return [self._event(StepEventKind.CACHED, step)]
        if _LAYER.match(line) or line.startswith(_HOUSEKEEPING):
            return []
        step.tail.append(line)
        return [self._event(StepEventKind.LOG, step, line=line)]

    @staticmethod
    def _event(kind: StepEventKind, step: _Step, *, line: str | None = None) -> StepEvent:
        return StepEvent(
            kind=kind, vertex=str(step.number), name=step.name, step=step.number, total=step.total,
            cached=step.cached, line=line,
        )


class ClassicEngine(DockerEngineBase):
    """Engine backed by the classic builder through the Docker SDK."""

    def __init__(self, info: EngineInfo):
        if not info.available:
            raise EngineError(f"no Docker engine: {info.reason}")
        super().__init__(info)

    def build(self, request: BuildRequest, progress: ProgressCallback | None = None) -> BuiltImage:
        import docker

        inputs = check_build_inputs(self.info, request)
        callback = progress or ignore_progress
        client = open_client()
        parser = ClassicStreamParser()
        started = time.monotonic()
        try:
            stream = client.api.build(
                path=str(inputs.context_dir), dockerfile=str(inputs.dockerfile), tag=request.tag,
                nocache=request.no_cache, rm=True, forcerm=True, pull=False, buildargs=dict(request.build_args),
                network_mode=request.network, platform=request.platform, decode=True,
                labels=dict(request.labels) or None,
            )
            for chunk in stream:
                for event in parser.feed(chunk):
                    callback(event)
            for event in parser.finish():
                callback(event)
        except docker.errors.APIError as exc:
            # Dockerfile parse errors come back as HTTP 400 before any step.
            message = str(exc.explanation or exc)
            raise BuildFailedError(
                f"build failed: {message}", step=None, log_tail=[], hint=failure_hint(message)
            ) from exc
        if parser.error is not None:
            step = parser.current
            where = f" at step {step.name}" if step else ""
            raise BuildFailedError(
                f"build failed{where}: {short_error(parser.error)}",
                step=step.name if step else None,
                log_tail=list(step.tail) if step else [],
                hint=failure_hint(parser.error + "\n" + "\n".join(step.tail if step else [])),
            )
        if parser.image_id is None:
            raise EngineError("the build ended without an image id")
        image_id, tags, size, layers = image_tags_and_size(client, parser.image_id)
        return BuiltImage(
            id=image_id, tags=tags, size=size, layers=layers,
            built_steps=tuple(s.name for s in parser.layer_steps() if not s.cached),
            cached_steps=tuple(s.name for s in parser.layer_steps() if s.cached),
            duration_s=time.monotonic() - started, builder=self.info.builder.value,
        )
