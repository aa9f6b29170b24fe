"""docker_server mode: the weights first, then the user's start_command behind Truss's routes.

    prefetch (already running) --done--> sh -c "<start_command>"  (environment_variables applied)
    proxy on the Truss port (8080; 8081 when the server itself uses 8080) from the start:
        readiness 503 until the prefetch finished and the server answers its readiness_endpoint
    server exits -> the container exits with the server's status (128+N when killed by signal N)
    SIGTERM/SIGINT -> forwarded to what `sh -c` runs (so the shell reports the server's own
        status); the server's exit ends the container

A failed prefetch exits 1 without starting the server (Truss would start it without weights).
As PID 1 the supervisor also reaps orphaned grandchildren, which the user's server may leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Any

from packager import constants

from ..image_paths import RuntimePaths
from ..prefetch.process import Prefetch
from ..timeline import Timeline, emit_timeline
from .app_config import ServingSettings
from .http_limits import HttpLimits
from .http_server import HttpServer
from .proxy import Proxy, RouteMap, request_upstream

log = logging.getLogger("pack.docker_server")
UPSTREAM_HOST = "127.0.0.1"
READY_POLL_SECONDS = 0.1


class DockerServerError(ValueError):
    pass


@dataclass(frozen=True)
class DockerServerSpec:
    start_command: str
    server_port: int
    predict_endpoint: str
    readiness_endpoint: str
    liveness_endpoint: str

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> DockerServerSpec:
        command = section.get("start_command")
        if not command or not str(command).strip():
            raise DockerServerError("docker_server.start_command is empty: pack's entrypoint needs a "
                                    "command to start (images with no_build keep their own entrypoint)")
        try:
            port = int(section["server_port"])
            endpoints = [str(section[k]) for k in ("predict_endpoint", "readiness_endpoint", "liveness_endpoint")]
        except (KeyError, TypeError, ValueError) as exc:
            raise DockerServerError(f"docker_server is incomplete or malformed: {exc}") from None
        return cls(str(command), port, *endpoints)


def proxy_port(server_port: int) -> int:
    raw = os.environ.get(constants.INFERENCE_SERVER_PORT, "").strip()
    if raw.isdigit():
        return int(raw)
    default = constants.DEFAULT_SERVER_PORT
    return default + 1 if server_port == default else default


def exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def group_members(pgid: int) -> list[int] | None:
    """The pids of a process group, from /proc (None where /proc cannot be read)."""
    members = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid):
            members.append(int(name))
    return members


def forward_signal(shell_pid: int, sig: int) -> None:
    """Signal the processes `sh -c` started rather than the shell itself: the shell then exits
    with its command's own status (a signalled shell would report 128+sig instead). When the
    shell has exec'ed the command, or /proc is unreadable, the whole group gets the signal."""
    members = group_members(shell_pid)
    others = [pid for pid in members or [] if pid != shell_pid]
    try:
        if others:
            for pid in others:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        else:
            os.killpg(shell_pid, sig)
    except ProcessLookupError:
        pass


def run_docker_server(paths: RuntimePaths, settings: ServingSettings, timeline: Timeline,
                      prefetch: Prefetch) -> int:
    try:
        spec = DockerServerSpec.from_config(settings.docker_server or {})
    except DockerServerError as exc:
        log.error("cannot start: %s", exc)
        return 1
    port = proxy_port(spec.server_port)
    if port == spec.server_port:
        log.error("the Truss routes and the server both want port %d; set %s to another port",
                  port, constants.INFERENCE_SERVER_PORT)
        return 1
    return asyncio.run(Supervisor(spec, settings, timeline, prefetch, port).main())


class Supervisor:
    def __init__(self, spec: DockerServerSpec, settings: ServingSettings, timeline: Timeline,
                 prefetch: Prefetch, port: int):
        self.spec = spec
        self.settings = settings
        self.timeline = timeline
        self.prefetch = prefetch
        self.port = port
        self._child: subprocess.Popen[bytes] | None = None
        self._stop: asyncio.Event | None = None

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        routes = RouteMap(self.spec.liveness_endpoint, self.spec.readiness_endpoint, self.spec.predict_endpoint)
        proxy = Proxy(UPSTREAM_HOST, self.spec.server_port, routes, lambda: self._child is not None)
        server = HttpServer(proxy.handle, "0.0.0.0", self.port, limits=HttpLimits.from_env())
        await server.start()
        self.timeline.mark("server_listening")
        log.info("Truss routes on port %d -> server port %d", server.port, self.spec.server_port)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

        prefetched = loop.run_in_executor(None, self._wait_prefetch)
        stopped = asyncio.ensure_future(self._stop.wait())
        either: list[asyncio.Future[Any]] = [prefetched, stopped]  # one holds an error, one True
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if self._stop.is_set():
            log.info("stopped before the server was started")
            await server.shutdown(1.0)
            return 0
        stopped.cancel()
        error = prefetched.result()
        if error:
            log.error("not starting the server: the weights could not be fetched: %s", error)
            self.timeline.failure = f"prefetch failed: {error}"
            emit_timeline(self.timeline)
            await server.shutdown(1.0)
            return 1

        env = dict(self.settings.environment_variables)
        env.update(os.environ)  # the entrypoint applied them already; `docker run -e` wins
        log.info("starting: sh -c %r", self.spec.start_command)
        # Popen returns as soon as the child is forked; nothing here blocks the loop.
        self._child = subprocess.Popen(["sh", "-c", self.spec.start_command], env=env,  # noqa: ASYNC220
                                       start_new_session=True)
        self.timeline.mark("server_start")
        watcher = asyncio.ensure_future(self._watch_ready())
        code = exit_status(await loop.run_in_executor(None, self._wait_child))
        watcher.cancel()
        log.info("the server exited with status %d", code)
        await server.shutdown(5.0)
        return code

    def _wait_prefetch(self) -> str | None:
        try:
            self.prefetch.wait()
            return None
        except Exception as exc:  # noqa: BLE001 - reported, then the container exits 1
            return str(exc)

    def _on_signal(self, sig: int) -> None:
        assert self._stop is not None
        self._stop.set()
        child = self._child
        if child is not None and child.returncode is None:
            log.info("forwarding signal %d to the server", sig)
            forward_signal(child.pid, sig)

    def _wait_child(self) -> int:
        child = self._child
        assert child is not None
        if os.getpid() != 1:
            return child.wait()
        # PID 1 inherits every orphan: reap them all, keep the server's own status.
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return child.returncode if child.returncode is not None else 1
            if pid == child.pid:
                child.returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                return child.returncode

    async def _watch_ready(self) -> None:
        """Poll the server's readiness_endpoint until it first answers 200, for the timeline."""
        while True:  # cancelled when the server exits
            try:
                response = await request_upstream(UPSTREAM_HOST, self.spec.server_port, "GET",
                                                  self.spec.readiness_endpoint, [], b"", timeout=5.0, retries=0)
                if response.stream is not None:
                    async for _ in response.stream:
                        pass
                if response.status == 200:
                    self.timeline.mark("ready")
                    emit_timeline(self.timeline)
                    return
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(READY_POLL_SECONDS)
