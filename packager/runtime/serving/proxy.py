"""The docker_server reverse proxy: Truss's routes in front of the user's own server.

Exact-path rewrites, as Truss's nginx config does (query strings kept):
    /                         -> liveness_endpoint
    /v1/models/model          -> readiness_endpoint
    /v1/models/model:predict  -> predict_endpoint
    /v1/websocket             -> predict_endpoint (Upgrade requests are tunnelled)
and every other path is forwarded unchanged. Bodies stream both ways (no buffering of responses,
like nginx's `proxy_buffering off`); one upstream connection per request keeps framing simple.

Nothing is forwarded as received: requests were parsed strictly by http_server, the user's
server's responses are parsed as strictly (http_parse; a malformed one is answered 502), and
both are re-serialised from the parsed headers, less the hop-by-hop ones and those a Connection
header names, with the proxy's own framing. An Upgrade is tunnelled only once the user's server
has answered 101; until then the client's bytes wait.

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
from .http_parse import (
    TARGET,
    TOKEN,
    BadRequest,
    Header,
    connection_tokens,
    parse_chunk_size,
    parse_status_line,
    response_framing,
    valid_field,
)
from .http_server import (
    HttpRequest,
    HttpResponse,
    Response,
    StreamResponse,
    Upgrade,
    read_header_lines,
    read_line,
    response_head,
)

log = logging.getLogger("pack.proxy")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-connection",
              "content-length", "host", "expect"}  # the last three: the proxy writes its own
UPGRADE_HEADERS = frozenset({"connection", "upgrade"})  # forwarded both ways when tunnelling an Upgrade
BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
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


class UpstreamError(ConnectionError):
    """The user's server sent something that is not valid HTTP/1.1: answered 502, never forwarded."""


async def _read_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, length: int | None,
                     chunked: bool) -> AsyncIterator[bytes]:
    try:
        if chunked:
            while True:
                size = parse_chunk_size(await read_line(reader, 502))
                if size == 0:
                    await read_header_lines(reader)  # trailers: parsed, then dropped
                    return
                remaining = size
                while remaining:
                    data = await reader.read(min(remaining, 1 << 20))
                    if not data:
                        raise ConnectionError("upstream closed inside a chunk")
                    remaining -= len(data)
                    yield data
                if await reader.readexactly(2) != b"\r\n":
                    raise UpstreamError("upstream chunk data not followed by CRLF")
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
    except BadRequest as exc:  # a malformed chunk line or trailer
        raise UpstreamError(f"malformed upstream response body: {exc}") from None
    finally:
        writer.close()


def forwarded(headers: list[Header], keep: frozenset[str] = frozenset()) -> list[Header]:
    """End-to-end headers only: hop-by-hop ones and those the message's Connection header names
    are dropped (RFC 9110 §7.6.1), but for `keep`; every one valid to write into a head."""
    named = connection_tokens(headers)
    return [(k, v) for k, v in headers
            if (k.lower() in keep or (k.lower() not in HOP_BY_HOP and k.lower() not in named))
            and valid_field(k, v)]


def _request_head(method: str, target: str, headers: list[Header], host: str) -> bytes:
    """A request head serialised from parsed parts (never bytes as received)."""
    if not TOKEN.fullmatch(method.encode("latin-1")) or not TARGET.fullmatch(target.encode("latin-1")):
        raise UpstreamError(f"cannot forward {method[:20]!r} {target[:100]!r}: not a valid request line")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers if valid_field(k, v)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_response_head(reader: asyncio.StreamReader) -> tuple[int, list[Header]]:
    """The user's server's status line and headers, parsed as strictly as a request's."""
    try:
        line = await read_line(reader, 502)
        _, status = parse_status_line(line)
        return status, await read_header_lines(reader, len(line))
    except BadRequest as exc:
        raise UpstreamError(f"malformed upstream response head: {exc}") from None


async def request_upstream(host: str, port: int, method: str, target: str,
                           headers: list[Header], body: bytes,
                           timeout: float = READ_TIMEOUT) -> UpstreamResponse:
    """Send one request to the user's server; raise OSError when it does not accept connections
    (UpstreamError, an OSError too, when it answers with a malformed response)."""
    reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD)
    try:
        sent = forwarded(headers)
        sent += [("Content-Length", str(len(body)))] if body or method in ("POST", "PUT", "PATCH") else []
        sent.append(("Connection", "close"))
        writer.write(_request_head(method, target, sent, f"{host}:{port}"))
        if body:
            writer.write(body)
        await writer.drain()
        while True:
            status, raw = await asyncio.wait_for(read_response_head(reader), timeout)
            if status >= 200 or status == 101:
                break
        try:
            kind, length = response_framing(status, method, raw)
        except BadRequest as exc:
            raise UpstreamError(str(exc)) from None
    except BaseException:
        writer.close()
        raise
    kept = forwarded(raw)
    if kind == "none" or (kind == "length" and length == 0):
        writer.close()
        return UpstreamResponse(status, kept, _empty(), 0)
    return UpstreamResponse(status, kept, _read_body(reader, writer, length, kind == "chunked"), length)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


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
        """WebSocket (or any Upgrade): replay the request upstream, re-serialised; once the user's
        server answers 101, copy bytes both ways. Until then nothing of the client's goes upstream;
        any other answer is forwarded as a response (parsed and re-serialised) and both closed."""
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
        except OSError:
            client_writer.write(BAD_GATEWAY)
            return
        try:
            headers = forwarded(req.headers.raw, keep=UPGRADE_HEADERS)
            headers += [("Content-Length", str(len(req.body)))] if req.body else []
            up_writer.write(_request_head(req.method, target, headers, f"{self.host}:{self.port}") + req.body)
            while True:
                status, raw = await asyncio.wait_for(read_response_head(up_reader), READ_TIMEOUT)
                if status >= 200 or status == 101:
                    break
            if status != 101:
                await self._refused_upgrade(req, status, raw, up_reader, up_writer, client_writer)
                return
            client_writer.write(response_head(101, forwarded(raw, keep=UPGRADE_HEADERS)))
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
            log.warning("upstream %s:%d did not accept the upgrade of %s: %s", self.host, self.port, target, exc)
            up_writer.close()
            client_writer.write(BAD_GATEWAY)
            return

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

    @staticmethod
    async def _refused_upgrade(req: HttpRequest, status: int, raw: list[Header], up_reader: asyncio.StreamReader,
                               up_writer: asyncio.StreamWriter, client_writer: asyncio.StreamWriter) -> None:
        """The user's server answered an upgrade with a plain response: forward it, then close."""
        try:
            kind, length = response_framing(status, req.method, raw)
        except BadRequest as exc:
            raise UpstreamError(str(exc)) from None
        headers = forwarded(raw) + [("Connection", "close")]
        headers += [("Content-Length", str(length or 0))] if kind in ("length", "none") else []
        client_writer.write(response_head(status, headers))
        if kind == "none":
            up_writer.close()
            return
        try:
            async for data in _read_body(up_reader, up_writer, length, kind == "chunked"):
                client_writer.write(data)
                await client_writer.drain()
        except (OSError, asyncio.IncompleteReadError) as exc:  # the head is out: closing tells the client
            log.warning("upstream response to a refused upgrade ended early: %s", exc)
