"""The Model-class server: HTTP up at once, the model loaded in a thread, then READY or exit.

Lifecycle: the HTTP server listens before the load starts (liveness answers at once, readiness
says 503); the load thread runs loader.load_model; success -> READY and the start-up timeline is
logged; failure -> the reason is logged and the process exits 1 (Truss exits 0, which hides
crash loops). SIGTERM/SIGINT stop accepting connections, let requests in flight (streams
included) finish for up to PACK_SHUTDOWN_TIMEOUT seconds, then exit 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from packager import constants

from ..image_paths import RuntimePaths, env_float
from ..prefetch.process import Prefetch
from ..timeline import Timeline, emit_timeline
from .app_config import ServingSettings
from .http_server import HttpServer
from .loader import LoadedModel, load_model, read_environment
from .missing_module import explain as explain_missing_module
from .pipeline import Pipeline
from .routes import TrussRoutes

log = logging.getLogger("pack.server")
DEFAULT_SHUTDOWN_TIMEOUT = 3600.0  # Truss's graceful-shutdown timeout
ENVIRONMENT_POLL_SECONDS = 30.0


class ModelServer:
    def __init__(self, paths: RuntimePaths, config: dict[str, Any], settings: ServingSettings,
                 timeline: Timeline, prefetch: Prefetch, port: int, host: str = "0.0.0.0"):
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
        self._stop: asyncio.Event | None = None

    def run(self) -> int:
        return asyncio.run(self._main())

    async def _main(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = HttpServer(TrussRoutes(self).handle, self.host, self.port)
        await server.start()
        self.timeline.mark("server_listening")
        log.info("serving Truss routes on %s:%d", self.host, server.port)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        threading.Thread(target=self._load, args=(loop, self._stop), name="pack-load", daemon=True).start()
        await self._stop.wait()
        if self.failed:
            await server.shutdown(0.5)
            return 1
        timeout = env_float(constants.PACK_SHUTDOWN_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT)
        log.info("shutting down: draining %d request(s) in flight (up to %g s)",
                 server.active_requests, timeout)
        drained = await server.shutdown(timeout)
        if not drained:
            log.warning("requests still running after %g s; exiting anyway", timeout)
        if self.pipeline is not None:
            self.pipeline.close()
        return 0

    # --- the load thread ---------------------------------------------------------------------
    def _load(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        def run_coroutine(awaitable: Awaitable[object]) -> object:
            if not asyncio.iscoroutine(awaitable):  # what run_coroutine_threadsafe raises itself
                raise TypeError("A coroutine object is required")
            return asyncio.run_coroutine_threadsafe(awaitable, loop).result()

        try:
            loaded = load_model(self.paths, self.config, self.settings, self.prefetch,
                                self.timeline, run_coroutine)
            asyncio.run_coroutine_threadsafe(self._become_ready(loaded), loop).result()
        except BaseException as exc:  # noqa: BLE001 - every load failure ends the process
            reason = f"{type(exc).__name__}: {exc}"
            missing = explain_missing_module(exc, (self.paths.app_dir, self.paths.packages_dir))
            # After the traceback: the end of the log is what people read first.
            explanation = "" if missing is None else missing.message()
            log.error("model load failed: %s\n%s%s", reason,
                      "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), explanation)
            if explanation:
                reason += "\n" + explanation
            self.failed = reason
            self.timeline.failure = reason
            emit_timeline(self.timeline)
            loop.call_soon_threadsafe(stop.set)

    async def _become_ready(self, loaded: LoadedModel) -> None:
        # Built on the loop: its semaphore and queues must belong to the loop that serves requests.
        self.pipeline = Pipeline(loaded.spec, asyncio.get_running_loop(),
                                 self.settings.predict_concurrency, self.settings.streaming_read_timeout)
        self.loaded = loaded
        self.ready = True
        self.timeline.mark("ready")
        log.info("model ready")
        emit_timeline(self.timeline)
        if loaded.spec.setup_environment is not None:
            threading.Thread(target=self._watch_environment, args=(loaded, loaded.spec.setup_environment),
                             daemon=True, name="pack-environment").start()

    def _watch_environment(self, loaded: LoadedModel, setup_environment: Callable[[object], object]) -> None:
        """Re-run setup_environment when the mounted environment's JSON changes (Truss polls)."""
        last = json.dumps(loaded.environment, sort_keys=True)
        while True:
            time.sleep(ENVIRONMENT_POLL_SECONDS)
            current = read_environment(self.paths)
            text = json.dumps(current, sort_keys=True)
            if current is None or text == last:
                continue
            last = text
            try:
                log.info("the dynamic environment changed; calling setup_environment")
                setup_environment(current)
            except Exception:  # a failing hook must not stop serving
                log.exception("setup_environment failed")
