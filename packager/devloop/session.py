"""One `pack watch`: a dev image of the truss running, then every edit applied to it.

    start():  plan -> dev image (the build image plus the reload control, one last layer) ->
              container with a loopback control port and a per-run token -> ready
    apply():  the truss planned again -> changes.classify ->
              Patch   -> files and config sent to the control, the model reloaded in place
                         (docker_server trusses have no in-process model: they restart);
              Rebuild -> the image built again (the layer cache keeps it short), the container
                         replaced, the weights volume kept;
              a config that no longer loads, or a build that fails, is reported and the running
              container keeps serving what it has.

The library never prints: everything the user should see arrives as an event through `report`.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packager import constants
from packager.builder import BuildResult
from packager.engine import Engine
from packager.errors import PackError
from packager.plan.model import BuildPlan
from packager.runner import Running, default_container_name, shut_down, start

from packager.render.code_layout import host_file

from .changes import Patch, Rebuild, Unchanged, classify, display_path
from .control import Control, ControlUnavailable, LoadError


@dataclass(frozen=True)
class Building:
    reason: str | None  # None: the first build


@dataclass(frozen=True)
class Serving:
    url: str
    image: str
    container: str
    ready_seconds: float


@dataclass(frozen=True)
class Reloaded:
    changed: tuple[str, ...]
    generation: int
    seconds: dict[str, float]
    since_edit: float  # from the change being seen to the new model serving


@dataclass(frozen=True)
class ReloadFailed:
    changed: tuple[str, ...]
    error: LoadError
    where: str  # the failing file of the truss and its line ("model/model.py:12"), or ""
    generation: int  # the generation still serving


@dataclass(frozen=True)
class NotApplied:
    """An edit that could not be applied (the config no longer loads, the build failed); what
    runs keeps serving."""

    error: PackError


@dataclass(frozen=True)
class LogLine:
    text: str


WatchEvent = Building | Serving | Reloaded | ReloadFailed | NotApplied | LogLine
Reporter = Callable[[WatchEvent], None]


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WatchSession:
    replan: Callable[[], BuildPlan]  # the truss as it is now, planned for a dev image
    build: Callable[[BuildPlan], BuildResult]
    engine: Engine
    report: Reporter
    port: int = 8080
    env: dict[str, str] = field(default_factory=dict)
    secrets_dir: Path | None = None
    name: str | None = None
    cache_volume: str | None = None
    cpu: bool = False
    timeout: float = 900.0
    plan: BuildPlan | None = None
    running: Running | None = None
    control: Control = field(default_factory=lambda: Control(free_loopback_port(), secrets.token_urlsafe(32)))

    # --- start and restart -----------------------------------------------------------------
    def start(self, plan: BuildPlan | None = None) -> Running:
        """Build and run `plan` (default: the truss planned now)."""
        self.report(Building(None))
        return self._run(self.build(plan or self.replan()))

    def _run(self, result: BuildResult) -> Running:
        self._stop_container()
        env = {**self.env, constants.PACK_DEV_CONTROL_PORT: str(self.control.port),
               constants.PACK_DEV_CONTROL_TOKEN: self.control.token}
        running = start(result.image.id, result.plan, port=self.port, secrets_dir=self.secrets_dir, env=env,
                        name=self.name or default_container_name(result.plan), timeout=self.timeout,
                        engine=self.engine, cpu=self.cpu, cache_volume=self.cache_volume,
                        on_output=lambda line: self.report(LogLine(line)), settled=self._load_failed)
        self.plan, self.running = result.plan, running
        self.report(Serving(running.url, result.tag, running.container.name, running.ready_seconds))
        if self._load_failed():  # the container waits for an edit that loads
            error = self.control.last_error()
            if error is not None:
                self.report(ReloadFailed((), error, self._where(error), 0))
        return running

    def _load_failed(self) -> bool:
        try:
            return self.control.status().get("state") == "failed"
        except ControlUnavailable:
            return False

    def _stop_container(self) -> None:
        if self.running is None:
            return
        running, self.running = self.running, None
        shut_down(running.container, running.output)

    def close(self) -> None:
        self._stop_container()

    def _where(self, error: LoadError) -> str:
        if error.file is None or self.plan is None:
            return ""
        host = host_file(self.plan.sources, error.file)
        shown = error.file if host is None else display_path(Path(self.plan.sources.truss_dir), host)
        return f"{shown}:{error.line}" if error.line is not None else shown

    # --- one batch of edits ----------------------------------------------------------------
    def apply(self, edited: Iterable[Path]) -> Patch | Rebuild | Unchanged:
        seen = time.monotonic()
        assert self.plan is not None, "start() first"
        try:
            new_plan = self.replan()
        except PackError as exc:
            self.report(NotApplied(exc))
            return Unchanged()
        change = classify(self.plan, new_plan, edited)
        if isinstance(change, Patch) and new_plan.docker_server is not None:
            change = Rebuild(f"{', '.join(change.changed)} changed (a docker_server truss restarts to take it)")
        if isinstance(change, Patch):
            try:
                outcome = self.control.patch(change)
            except ControlUnavailable as exc:
                change = Rebuild(f"{exc.message}: restarting")
            else:
                self.plan = new_plan  # the container holds the new files, whether or not they load
                if outcome.ok:
                    self.report(Reloaded(change.changed, outcome.generation, outcome.seconds,
                                         time.monotonic() - seen))
                elif outcome.error is not None:
                    self.report(ReloadFailed(change.changed, outcome.error, self._where(outcome.error),
                                             outcome.generation))
                return change
        if isinstance(change, Rebuild):
            self.report(Building(change.reason))
            try:
                result = self.build(new_plan)
                self._run(result)
            except PackError as exc:
                self.report(NotApplied(exc))
        return change
