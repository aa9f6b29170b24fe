"""The docker_server reverse proxy: Truss's routes in front of the user's own server.

Exact-path rewrites, as Truss's nginx config does (query strings kept):
    /                         -> liveness_endpoint
    /v1/models/model          -> readiness_endpoint
    /v1/models/model:predict  -> predict_endpoint
    /v1/websocket             -> predict_endpoint (Upgrade requests are tunnelled)
and every other path is forwarded unchanged. Bodies stream both ways (no buffering of responses,
like nginx's `proxy_buffering off`); one upstream connection per request keeps framing simple.

Gating: until the server process is started (the weights are still downloading), liveness is
answered here (200 true) and everything else gets 503, so readiness stays false until the
prefetch has finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from .http_errors import DOWNSTREAM, error_response, not_ready
from .http_server import (
    BadRequest,
    HttpRequest,
    HttpResponse,
    Response,
    StreamResponse,
    Upgrade,
    parse_head,
)

log = logging.getLogger("pack.proxy")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-connection",
              "content-length"}
READ_TIMEOUT = 18030.0  # Truss's nginx proxy_read_timeout
MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class RouteMap:
    liveness: str
    readiness: str
    predict: str

    def rewrite(self, path: str) -> str | None:
        return {
            "/": self.liveness,
            "/v1/models/model": self.readiness,
            "/v1/models/model:predict": self.predict,
            "/v1/websocket": self.predict,
        }.get(path)


@dataclass
class UpstreamResponse:
    status: int
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes]
    length: int | None


async def _read_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, length: int | None,
                     chunked: bool) -> AsyncIterator[bytes]:
    try:
        if chunked:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass
                    return
                remaining = size
                while remaining:
                    data = await reader.read(min(remaining, 1 << 20))
                    if not data:
                        raise ConnectionError("upstream closed inside a chunk")
                    remaining -= len(data)
                    yield data
                await reader.readexactly(2)
        elif length is not None:
            remaining = length
            while remaining:
                data = await reader.read(min(remaining, 1 << 20))
                if not data:
                    raise ConnectionError(f"upstream closed with {remaining} bytes missing")
                remaining -= len(data)
                yield data
        else:
            while True:
                data = await reader.read(1 << 20)
                if not data:
                    return
                yield data
    finally:
        writer.close()


def _request_head(method: str, target: str, headers: list[tuple[str, str]], host: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def request_upstream(host: str, port: int, method: str, target: str,
                           headers: list[tuple[str, str]], body: bytes,
                           timeout: float = READ_TIMEOUT) -> UpstreamResponse:
    """Send one request to the user's server; raise OSError when it does not accept connections."""
    reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD)
    try:
        sent = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() != "host"]
        sent += [("Content-Length", str(len(body)))] if body or method in ("POST", "PUT", "PATCH") else []
        sent.append(("Connection", "close"))
        writer.write(_request_head(method, target, sent, f"{host}:{port}"))
        if body:
            writer.write(body)
        await writer.drain()
        while True:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            status, raw = _parse_status(head)
            if status >= 200 or status == 101:
                break
    except BaseException:
        writer.close()
        raise
    lower = {k.lower(): v for k, v in raw}
    chunked = "chunked" in lower.get("transfer-encoding", "").lower()
    length = None if chunked else (int(lower["content-length"]) if lower.get("content-length", "").isdigit() else None)
    if method == "HEAD" or status in (204, 304):
        length, chunked = 0, False
    kept = [(k, v) for k, v in raw if k.lower() not in HOP_BY_HOP]
    if length == 0:
        writer.close()
        return UpstreamResponse(status, kept, _empty(), 0)
    return UpstreamResponse(status, kept, _read_body(reader, writer, length, chunked), length)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


def _parse_status(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    # The header lines follow the same grammar as a request's: reuse that parser for them.
    first, _, rest = head.partition(b"\r\n")
    parts = first.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"malformed upstream status line {first[:80]!r}")
    try:
        _, _, _, headers = parse_head(b"GET / HTTP/1.1\r\n" + rest)
    except BadRequest as exc:
        raise ConnectionError(f"malformed upstream response: {exc}") from None
    return int(parts[1]), headers


class Proxy:
    def __init__(self, host: str, port: int, routes: RouteMap, started: Callable[[], bool]):
        self.host, self.port = host, port
        self.routes = routes
        self._started = started

    async def handle(self, req: HttpRequest) -> Response:
        mapped = self.routes.rewrite(req.path)
        if not self._started():
            if req.path == "/":
                return HttpResponse(200, b"true", content_type="application/json")
            return not_ready("model").response()
        target = req.target if mapped is None else mapped + (f"?{req.query}" if req.query else "")
        if "upgrade" in (req.headers.get("connection") or "").lower() and req.headers.get("upgrade"):
            return Upgrade(lambda r, w: self._tunnel(req, target, r, w))
        try:
            upstream = await request_upstream(self.host, self.port, req.method, target,
                                              req.headers.raw, req.body)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
            if req.path == "/v1/models/model":
                return not_ready("model").response()
            log.warning("upstream %s:%d did not answer %s %s: %s", self.host, self.port,
                        req.method, target, exc)
            return error_response(502, f"the model server on port {self.port} is not reachable: "
                                       f"{type(exc).__name__}", DOWNSTREAM)
        return StreamResponse(upstream.status, upstream.body, upstream.headers, content_type=None,
                              length=upstream.length)

    async def _tunnel(self, req: HttpRequest, target: str, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        """WebSocket (or any Upgrade): replay the request upstream, then copy bytes both ways."""
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            client_writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        headers = [(k, v) for k, v in req.headers.raw if k.lower() != "host"]
        up_writer.write(_request_head(req.method, target, headers, f"{self.host}:{self.port}") + req.body)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(1 << 16):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))

