"""The reload control: HTTP/1.1 on 127.0.0.1:$PACK_DEV_CONTROL_PORT (never another address),
every request carrying `Authorization: Bearer $PACK_DEV_CONTROL_TOKEN` (401 otherwise).

    POST /v1/dev/patch    apply a patch, reload in place, answer when the reload has finished:
                          200 {"ok": true, "generation", "seconds": {apply, import, init, load, total}}
                          200 {"ok": false, "generation", "error": {type, message, file, line, traceback}}
                          400 {"detail"} for a malformed patch (nothing applied)
    GET  /v1/dev/status   200 {"generation", "state", "last_error"}

Patches are applied and reloaded one at a time: a second request waits for the first.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from typing import TYPE_CHECKING

from ..serving.http_server import HttpRequest, HttpResponse, HttpServer
from ..serving.reload import Reloader
from .error_report import ErrorReport, describe
from .patch import PatchRejected, apply_patch, parse_patch

if TYPE_CHECKING:
    from ..serving.server import ModelServer

log = logging.getLogger("pack.dev")
LOOPBACK = "127.0.0.1"
MAX_PATCH_BYTES = 256 * 1024 ** 2  # code and config, base64: weights never travel this way
PATCH, STATUS = "/v1/dev/patch", "/v1/dev/status"


def _json(status: int, doc: object, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    return HttpResponse(status, json.dumps(doc).encode(), headers or [], content_type="application/json")


class ControlListener:
    def __init__(self, server: ModelServer, token: str):
        self._server = server
        self._reloader = Reloader(server)
        self._expected = f"Bearer {token}".encode()
        self._lock = asyncio.Lock()
        self._http: HttpServer | None = None

    async def start(self, port: int) -> ControlListener:
        self._http = HttpServer(self.handle, LOOPBACK, port, max_body=MAX_PATCH_BYTES)
        await self._http.start()
        log.info("reload control on %s:%d", LOOPBACK, self._http.port)
        return self

    async def close(self) -> None:
        if self._http is not None:
            await self._http.shutdown(0.5)

    def _code_dirs(self) -> tuple[str, ...]:
        return self._server.paths.app_dir, self._server.paths.packages_dir

    def _report(self, exc: BaseException | None) -> ErrorReport | None:
        return None if exc is None else describe(exc, self._code_dirs())

    async def handle(self, req: HttpRequest) -> HttpResponse:
        given = (req.headers.get("authorization") or "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, self._expected):
            return _json(401, {"detail": "missing or wrong bearer token"}, [("WWW-Authenticate", "Bearer")])
        if req.path == PATCH:
            return await self._patch(req) if req.method == "POST" else _json(405, {"detail": "use POST"})
        if req.path == STATUS:
            return self._status() if req.method in ("GET", "HEAD") else _json(405, {"detail": "use GET"})
        return _json(404, {"detail": f"no route {req.path} (routes: {PATCH}, {STATUS})"})

    def _status(self) -> HttpResponse:
        server = self._server
        return _json(200, {"generation": server.generation, "state": server.state,
                           "last_error": self._report(server.last_error)})

    async def _patch(self, req: HttpRequest) -> HttpResponse:
        async with self._lock:
            started = time.monotonic()
            try:
                patch = parse_patch(req.body, self._server.paths)
            except PatchRejected as exc:
                log.warning("patch rejected: %s", exc)
                return _json(400, {"detail": str(exc)})
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, apply_patch, patch)
            except OSError as exc:
                # Nothing reloaded; the instance serving stays. Reported like a failed load.
                log.error("patch not applied (%s): %s", patch.describe(), exc)
                report = describe(exc, self._code_dirs())
                report["file"] = exc.filename if isinstance(exc.filename, str) else None
                report["line"] = None
                return _json(200, {"ok": False, "generation": self._server.generation, "error": report})
            applied = time.monotonic()
            outcome = await self._reloader.reload()
            total = round(time.monotonic() - started, 4)
            if outcome.error is not None:
                report = describe(outcome.error, self._code_dirs())
                log.error("%s changed: reload failed at %s:%s: %s: %s", patch.describe(), report["file"],
                          report["line"], report["type"], report["message"])
                return _json(200, {"ok": False, "generation": outcome.generation, "error": report})
            seconds = {"apply": round(applied - started, 4), **outcome.seconds, "total": total}
            log.info("%s changed: reloaded in %.2f s (generation %d)", patch.describe(), total, outcome.generation)
            return _json(200, {"ok": True, "generation": outcome.generation, "seconds": seconds})


async def start_control(server: ModelServer, port: int, token: str) -> ControlListener:
    """Listen on loopback for the watcher; raises OSError when the port is taken."""
    return await ControlListener(server, token).start(port)
