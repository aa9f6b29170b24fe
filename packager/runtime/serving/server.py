"""The Model-class server: HTTP up at once, the model loaded in a thread, then READY or exit.

Lifecycle: the HTTP server listens before the load starts (liveness answers at once, readiness
says 503); the load thread runs loader.load_model; success -> READY and the start-up timeline is
logged; failure -> the reason is logged and the process exits 1 (Truss exits 0, which hides
crash loops). SIGTERM/SIGINT stop accepting connections, let requests in flight (streams
included) finish for up to PACK_SHUTDOWN_TIMEOUT seconds, then exit 0.

Reload in place (`pack watch` only): when PACK_DEV_CONTROL_PORT and PACK_DEV_CONTROL_TOKEN are
set and the image carries packager/runtime/dev (handed in by the entrypoint as `dev_control`;
serving never imports it), the reload control listens on loopback before the load starts and
drives reload.Reloader, which installs each new instance here. `generation` counts successful
loads; with the control running a failed first load keeps the process up (readiness 503), so
that the next good edit can load it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from packager import constants

from ..image_paths import RuntimePaths, env_float
from ..prefetch.process import Prefetch
from ..timeline import Timeline, emit_timeline
from .app_config import ServingSettings
from .http_limits import HttpLimits
from .http_server import HttpServer
from .loader import LoadedModel, load_model, read_environment
from .missing_module import explain as explain_missing_module
from .observe import observe
from .pipeline import Pipeline
from .request_metrics import REQUESTS
from .routes import TrussRoutes

if TYPE_CHECKING:
    # packager.runtime.dev's start_control(server, port, token), handed in by the entrypoint.
    StartControl = Callable[["ModelServer", int, str], Awaitable["Control"]]

log = logging.getLogger("pack.server")
DEFAULT_SHUTDOWN_TIMEOUT = 3600.0  # Truss's graceful-shutdown timeout
ENVIRONMENT_POLL_SECONDS = 30.0
# ModelServer.state, as GET /v1/dev/status reports it.
LOADING, SERVING, RELOADING, FAILED = "loading", "serving", "reloading", "failed"


class Control(Protocol):
    """The running reload control, as the server sees it."""

    async def close(self) -> None: ...


class ModelServer:
    def __init__(self, paths: RuntimePaths, config: dict[str, Any], settings: ServingSettings,
                 timeline: Timeline, prefetch: Prefetch, port: int, host: str = "0.0.0.0",
                 dev_control: Callable[[], StartControl] | None = None):
        self.paths = paths
        self.config = config
        self.settings = settings
        self.timeline = timeline
        self.prefetch = prefetch
        self.port = port
        self.host = host
        self.ready = False
        self.failed: str | None = None
        self.pipeline: Pipeline | None = None
        self.loaded: LoadedModel | None = None
        self.generation = 0
        self.state = LOADING
        self.last_error: BaseException | None = None
        self._dev_control = dev_control
        self._control: Control | None = None
        self._stop: asyncio.Event | None = None
        self.first_load_done: asyncio.Event | None = None  # set when the first load ended, either way

    def run(self) -> int:
        return asyncio.run(self._main())

    async def _main(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.first_load_done = asyncio.Event()
        routes = TrussRoutes(self)
        server = HttpServer(observe(routes.handle), self.host, self.port, limits=HttpLimits.from_env(),
                            on_refusal=REQUESTS.refused)
        await server.start()
        self.timeline.mark("server_listening")
        log.info("serving Truss routes on %s:%d", self.host, server.port)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        self._control = await self._start_control()
        threading.Thread(target=self._load, args=(loop, self._stop), name="pack-load", daemon=True).start()
        await self._stop.wait()
        if self._control is not None:
            await self._control.close()
        if self.failed:
            await server.shutdown(0.5)
            return 1
        timeout = env_float(constants.PACK_SHUTDOWN_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT)
        log.info("shutting down: draining %d request(s) in flight (up to %g s)",
                 server.active_requests, timeout)
        if routes.websockets.close_all():  # as uvicorn does: 1012, then their handlers end
            log.info("closing %d WebSocket session(s) (1012 service restart)", len(routes.websockets))
        drained = await server.shutdown(timeout)
        if not drained:
            log.warning("requests still running after %g s; exiting anyway", timeout)
        if self.pipeline is not None:
            self.pipeline.close()
        return 0

    async def _start_control(self) -> Control | None:
        """The reload control, only when `pack watch` set both variables on an image that has it."""
        port = os.environ.get(constants.PACK_DEV_CONTROL_PORT, "").strip()
        # Out of the environment the model and its subprocesses see.
        token = os.environ.pop(constants.PACK_DEV_CONTROL_TOKEN, "").strip()
        if not port and not token:
            return None
        names = f"{constants.PACK_DEV_CONTROL_PORT} and {constants.PACK_DEV_CONTROL_TOKEN}"
        if not (port.isdigit() and 0 < int(port) < 65536 and token):
            log.warning("%s must both be set (a port and a token) for the reload control; serving "
                        "without it", names)
            return None
        try:
            if self._dev_control is None:
                raise ImportError("no reload control was handed to the server")
            start_control = self._dev_control()
        except ImportError as exc:
            log.warning("%s are set, but this image has no reload control (%s; only images built "
                        "for `pack watch` carry packager/runtime/dev); serving without it", names, exc)
            return None
        try:
            return await start_control(self, int(port), token)
        except OSError as exc:
            log.error("the reload control cannot listen on 127.0.0.1:%s: %s; serving without it", port, exc)
            return None

    # --- the first load ----------------------------------------------------------------------
    def _load(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        try:
            loaded = load_model(self.paths, self.config, self.settings, self.prefetch,
                                self.timeline, coroutine_runner(loop))
            asyncio.run_coroutine_threadsafe(self._first_ready(loaded), loop).result()
        except BaseException as exc:  # noqa: BLE001 - every load failure ends the process
            reason = self.log_failure("model load failed", exc)
            self.timeline.failure = reason
            emit_timeline(self.timeline)
            if self._control is not None:
                # pack watch: the next good edit loads it (readiness says 503 until then).
                log.error("waiting for an edit that loads (the reload control is listening)")
                loop.call_soon_threadsafe(self._first_load_failed, exc)
            else:
                self.failed = reason
                loop.call_soon_threadsafe(stop.set)

    def _first_load_failed(self, exc: BaseException) -> None:
        self.state, self.last_error = FAILED, exc
        assert self.first_load_done is not None
        self.first_load_done.set()

    async def _first_ready(self, loaded: LoadedModel) -> None:
        self.install(loaded, self.config, self.settings)
        emit_timeline(self.timeline)
        assert self.first_load_done is not None
        self.first_load_done.set()

    def log_failure(self, what: str, exc: BaseException) -> str:
        """Log a failed load with its traceback (and a missing module explained); the reason."""
        reason = f"{type(exc).__name__}: {exc}"
        missing = explain_missing_module(exc, (self.paths.app_dir, self.paths.packages_dir))
        # After the traceback: the end of the log is what people read first.
        explanation = "" if missing is None else missing.message()
        log.error("%s: %s\n%s%s", what, reason,
                  "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), explanation)
        return reason + ("\n" + explanation if explanation else "")

    def install(self, loaded: LoadedModel, config: dict[str, Any], settings: ServingSettings) -> None:
        """Make `loaded` the instance that serves (on the loop, between two requests' steps); the
        previous one closes after the requests it is running."""
        # Built on the loop: its semaphore and queues must belong to the loop that serves requests.
        previous, retired = self.pipeline, self.generation
        self.pipeline = Pipeline(loaded.spec, asyncio.get_running_loop(),
                                 settings.predict_concurrency, settings.streaming_read_timeout)
        self.loaded, self.config, self.settings = loaded, config, settings
        self.generation += 1
        self.state, self.last_error = SERVING, None
        self.timeline.failure = None  # a failed first load under pack watch, now recovered
        if not self.ready:
            self.ready = True
            self.timeline.mark("ready")
            log.info("model ready")
        if previous is not None:
            running = previous.retire(lambda: log.info("generation %d closed", retired))
            if running:
                log.info("generation %d finishes %d request(s) in flight", retired, running)
        if loaded.spec.setup_environment is not None:
            threading.Thread(target=self._watch_environment, args=(loaded, loaded.spec.setup_environment),
                             daemon=True, name="pack-environment").start()

    def _watch_environment(self, loaded: LoadedModel, setup_environment: Callable[[object], object]) -> None:
        """Re-run setup_environment when the mounted environment's JSON changes (Truss polls),
        while `loaded` is the instance serving."""
        last = json.dumps(loaded.environment, sort_keys=True)
        while self.loaded is loaded:
            time.sleep(ENVIRONMENT_POLL_SECONDS)
            current = read_environment(self.paths)
            text = json.dumps(current, sort_keys=True)
            if current is None or text == last or self.loaded is not loaded:
                continue
            last = text
            try:
                log.info("the dynamic environment changed; calling setup_environment")
                setup_environment(current)
            except Exception:  # a failing hook must not stop serving
                log.exception("setup_environment failed")



def coroutine_runner(loop: asyncio.AbstractEventLoop) -> Callable[[Awaitable[object]], object]:
    """For a load thread: run an awaitable the model returned on the serving loop, wait for it."""
    def run_coroutine(awaitable: Awaitable[object]) -> object:
        if not asyncio.iscoroutine(awaitable):  # what run_coroutine_threadsafe raises itself
            raise TypeError("A coroutine object is required")
        return asyncio.run_coroutine_threadsafe(awaitable, loop).result()

    return run_coroutine
