"""Running an image locally the way the platform would: host network, secrets as read-only
files under /secrets, a named volume for the weight cache so a restart does not download again."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..builder import ENDPOINT_ARGS, truss_labels
from ..engine import (
    ContainerHandle,
    ContainerRunner,
    GpuRequest,
    GpuUnavailableError,
    RunRequest,
    open_engine,
    wait_ready,
)
from ..constants import READINESS_PATH
from ..errors import EngineError
from ..interrupts import signals_held
from ..plan.model import BuildPlan
from ..render.context import RUNTIME_CACHE_DIR
from .log_lines import readable

READY_PATH = READINESS_PATH
CACHE_VOLUME_PREFIX = "pack-weights-"  # the weight-cache volumes `pack run` names (and cleanup removes)


@dataclass(frozen=True)
class Running:
    container: ContainerHandle
    url: str
    ready_seconds: float
    timeline: dict[str, Any] | None
    output: OutputFollower | None = None  # the container's output, passed on from its start


class OutputFollower:
    """Passes a container's output to `on_line`, line by line, from its first line until the
    container stops (a thread of its own, so readiness is waited for meanwhile)."""

    def __init__(self, container: ContainerHandle, on_line: Callable[[str], None]):
        self._container, self._on_line = container, on_line
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._pump, name=f"pack-logs-{container.name}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for line in self._container.follow_logs():
                self._on_line(line)
        except Exception as exc:  # noqa: BLE001 - kept for the caller: a thread cannot raise to it
            self.error = exc

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the output has ended (the container stopped); False when `timeout` passed first."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


def cache_volume_name(plan: BuildPlan) -> str:
    name = CACHE_VOLUME_PREFIX + (re.sub(r"[^a-z0-9_.-]+", "-", plan.model_name.lower()).strip("-.") or "model")
    if plan.runtime_user is not None:
        # A new volume takes the owner of the image's cache directory (the server's user); one
        # that a root server created earlier would stay root's and unwritable for this user.
        name += "-" + (re.sub(r"[^a-z0-9_.-]+", "-", plan.runtime_user.lower()).strip("-.") or "user")
    return name


def default_container_name(plan: BuildPlan) -> str:
    """pack-<model>: one container per truss, replaced by the next run of it."""
    return "pack-" + cache_volume_name(plan).removeprefix(CACHE_VOLUME_PREFIX)


def gpu_request(plan: BuildPlan, *, cpu: bool = False) -> GpuRequest | None:
    """What the container asks the engine for: every GPU for `H100` (as `docker run --gpus all`
    and Truss's local runs do), N of them for `H100:N`; nothing without an accelerator or with
    cpu=True (`pack run --cpu`)."""
    if plan.accelerator is None or cpu:
        return None
    return GpuRequest(None if plan.accelerator.count == 1 else plan.accelerator.count)


def source_endpoints(env: dict[str, str] | None = None) -> dict[str, str]:
    """Where weight sources live as this host sees them (HF_ENDPOINT, S3/GCS endpoints): a local
    run fetches from the same places the plan resolved against. Never credentials."""
    env = dict(os.environ) if env is None else env
    return {name: env[name] for name in ENDPOINT_ARGS if env.get(name)}


def start(image: str, plan: BuildPlan, *, port: int = 8080, secrets_dir: str | os.PathLike[str] | None = None,
          env: dict[str, str] | None = None, name: str | None = None, timeout: float = 600.0,
          engine: ContainerRunner | None = None, cpu: bool = False, cache_volume: str | None = None,
          on_output: Callable[[str], None] | None = None, settled: Callable[[], bool] | None = None) -> Running:
    """Run the image on the host network and wait until its readiness route answers 200.

    The container and its weight-cache volume carry the truss's labels (builder.truss_labels).
    With resources.accelerator the container gets GPUs (gpu_request); an engine without the
    NVIDIA runtime stops the run at start with what to do, unless cpu=True runs it without.
    on_output receives the container's output line by line from its start (Running.output).
    settled ends the wait for readiness early (engine.wait_ready).
    Interrupted (KeyboardInterrupt) before it is ready, the container is stopped and removed."""
    engine = engine or open_engine()
    environment = {**source_endpoints(), **(env or {})}
    gpus = gpu_request(plan, cpu=cpu)
    container: ContainerHandle | None = None
    output: OutputFollower | None = None
    url = f"http://127.0.0.1:{port}"
    try:
        with signals_held():  # an interrupt arrives once the container has a handle to stop
            container = engine.run(RunRequest(
                image, port=port, env=environment, secrets_dir=Path(secrets_dir) if secrets_dir else None,
                volumes={cache_volume or cache_volume_name(plan): RUNTIME_CACHE_DIR}, name=name, replace=True,
                gpus=gpus, labels=truss_labels(plan)))
        output = OutputFollower(container, on_output) if on_output is not None else None
        seconds = wait_ready(url + READY_PATH, timeout, container=container, settled=settled, readable=readable)
    except GpuUnavailableError as exc:
        raise EngineError(
            f"{plan.model_name} asks for accelerator {plan.accelerator} (resources.accelerator), so the "
            f"container requests {gpus}, and this Docker engine cannot provide them: {exc.detail}",
            hint=f"{exc.hint}; or run it on CPU with --cpu (`pack run --cpu`, `pack chains run --cpu`)",
        ) from None
    except KeyboardInterrupt:
        if container is not None:
            shut_down(container, output)
        raise
    timeline = startup_timeline(url) or timeline_from_logs(container.logs(tail=500))
    return Running(container, url, seconds, timeline, output)


def shut_down(container: ContainerHandle, output: OutputFollower | None = None, timeout_s: int = 10) -> None:
    """Stop the container as `docker stop` does (SIGTERM, then SIGKILL after timeout_s), let its
    last output through, and remove it."""
    try:
        container.stop(timeout_s)
        if output is not None:
            output.wait(5.0)
    finally:
        container.remove()


def wait_exit(running: Running, poll_s: float = 0.5, stop: threading.Event | None = None) -> int | None:
    """Block until the container exits (its output passed on to the end); its exit code. Returns
    None early once `stop` is set, the container still running."""
    step = poll_s if stop is None else min(poll_s, 0.1)  # a stop is answered within 0.1 s
    while running.container.status() in ("running", "created", "restarting"):
        if stop is not None and stop.is_set():
            return None
        if running.output is not None:
            running.output.wait(step)
        else:
            time.sleep(step)
    if running.output is not None:
        running.output.wait(5.0)
    return running.container.exit_code()


def timeline_from_logs(logs: str) -> dict[str, Any] | None:
    """The runtime also logs its timeline as one JSON line (docker_server images route /metrics
    to the user's server, so this is where the timeline is found there)."""
    for line in reversed(logs.splitlines()):
        if '"pack.startup_timeline"' not in line:
            continue
        try:
            doc = json.loads(line[line.index("{"):])
        except (ValueError, json.JSONDecodeError):
            continue
        return {"stages": doc.get("stages", {}), "download_seconds": {
            k.removesuffix("_seconds"): v for k, v in (doc.get("download") or {}).items()
            if k in ("wall_seconds", "blocked_seconds", "hidden_seconds")}}
    return None


_STAGE = re.compile(r'^pack_startup_stage_seconds\{stage="([a-z_]+)"\} ([0-9.eE+-]+)$')
_DOWNLOAD = re.compile(r"^pack_startup_download_(wall|blocked|hidden)_seconds ([0-9.eE+-]+)$")


def startup_timeline(url: str) -> dict[str, Any] | None:
    """The runtime's start-up timeline, read from its Prometheus /metrics."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
            text = response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return None
    stages, download = {}, {}
    for line in text.splitlines():
        if match := _STAGE.match(line):
            stages[match.group(1)] = round(float(match.group(2)), 3)
        elif match := _DOWNLOAD.match(line):
            download[match.group(1)] = round(float(match.group(2)), 3)
    return {"stages": stages, "download_seconds": download} if stages else None
