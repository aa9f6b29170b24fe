"""The docker_server reverse proxy: Truss's routes in front of the user's own server.

Exact-path rewrites, as Truss's nginx config does (query strings kept):
    /                         -> liveness_endpoint
    /v1/models/model          -> readiness_endpoint
    /v1/models/model:predict  -> predict_endpoint
    /v1/websocket             -> predict_endpoint (Upgrade requests are tunnelled)
and every other path is forwarded unchanged. Response bodies stream (like nginx's
`proxy_buffering off`), but for one of known length up to WHOLE_BODY_BYTES, which is read whole
and answered in one write; one upstream connection per request keeps framing simple.

A request that provably never reached the user's server is sent again, at most twice, after a few
milliseconds (what nginx's proxy_next_upstream does for `error`): whatever its method when the
connection was refused or reset before any of the request left, and when the method is
idempotent (RFC 9110 §9.2.2) when it was reset or closed before any byte of an answer. A request
that may have been read otherwise (a POST reset after it was sent) is answered 502, never resent.

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
import socket
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
    parse_header_block,
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
# An answer of known length up to this is read whole and answered in one write (head and body in
# one send), with no stream and no generator; a longer one, or one chunked or delimited by the
# close, streams as it arrives (proxy_buffering off).
WHOLE_BODY_BYTES = 64 * 1024
RECV_BYTES = 256 * 1024
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})  # RFC 9110 §9.2.2
# Pauses before each new try of a request that never reached the user's server (at most two).
RETRY_DELAYS = (0.005, 0.02)


@dataclass(frozen=True)
class RouteMap:
    liveness: str
    readiness: str
    predict: str

    def rewrite(self, path: str) -> str | None:
        if path == "/":
            return self.liveness
        if path == "/v1/models/model":
            return self.readiness
        if path in ("/v1/models/model:predict", "/v1/websocket"):
            return self.predict
        return None


@dataclass
class UpstreamResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""  # the whole body, when `stream` is None
    stream: AsyncIterator[bytes] | None = None  # the body as it arrives: chunked, until close, or large
    length: int | None = None  # the streamed body's length, when the user's server gave one


class UpstreamError(ConnectionError):
    """The user's server sent something that is not valid HTTP/1.1: answered 502, never forwarded."""


async def _read_body(reader: asyncio.StreamReader, close: Callable[[], object], length: int | None,
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
        close()


def forwarded(headers: list[Header], keep: frozenset[str] = frozenset()) -> list[Header]:
    """End-to-end headers only: hop-by-hop ones and those the message's Connection header names
    are dropped (RFC 9110 §7.6.1), but for `keep`; every one valid to write into a head."""
    named = connection_tokens(headers)
    kept = []
    for name, value in headers:
        lowered = name.lower()
        if (lowered in keep or (lowered not in HOP_BY_HOP and lowered not in named)) and valid_field(name, value):
            kept.append((name, value))
    return kept


def _request_head(method: str, target: str, headers: list[Header], host: str) -> bytes:
    """A request head serialised from parsed parts (never bytes as received); `headers` come from
    forwarded() or are the proxy's own framing, valid already."""
    if not TOKEN.fullmatch(method.encode("latin-1")) or not TARGET.fullmatch(target.encode("latin-1")):
        raise UpstreamError(f"cannot forward {method[:20]!r} {target[:100]!r}: not a valid request line")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_response_head(reader: asyncio.StreamReader) -> tuple[int, list[Header]]:
    """The user's server's status line and headers, parsed as strictly as a request's."""
    try:
        line = await read_line(reader, 502)
        _, status = parse_status_line(line)
        return status, await read_header_lines(reader, len(line))
    except BadRequest as exc:
        raise UpstreamError(f"malformed upstream response head: {exc}") from None


# Resolved once: the user's server is on a loopback address that does not change.
_ADDRESSES: dict[tuple[str, int], tuple[int, tuple[object, ...]]] = {}


async def _resolve(host: str, port: int) -> tuple[int, tuple[object, ...]]:
    try:  # an address needs no lookup: no thread for it
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, _, _, _, address = infos[0]
    _ADDRESSES[host, port] = family, address
    return family, address


# A connection to the user's server opened ahead of the next request, so that request finds the
# handshake done and the server's accept (and its thread, or task, for the connection) behind it:
# 0.1 ms of each answer at one client. One per server, replaced as it is used; one older than
# SPARE_MAX_AGE is closed unused (a server may drop connections that stay silent).
SPARE_MAX_AGE = 5.0
_PEEK = int(socket.MSG_PEEK | socket.MSG_DONTWAIT)  # once: an enum Flag's `|` costs microseconds
_SPARES: dict[tuple[object, ...], tuple[socket.socket, float]] = {}


def _connect(family: int, address: tuple[object, ...]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.connect(address)
    except (BlockingIOError, InterruptedError):
        pass  # connecting: on loopback usually connected by now, so the first send is tried at once
    except OSError:
        sock.close()
        raise
    return sock


def _take_spare(address: tuple[object, ...], now: float) -> socket.socket | None:
    """The spare connection to `address` if it is young and the server has neither closed it nor
    said anything on it (checked just before the request goes out: a server that closed it
    earlier is never sent a request that could then be lost)."""
    entry = _SPARES.pop(address, None)
    if entry is None:
        return None
    sock, made = entry
    if now - made <= SPARE_MAX_AGE:
        try:
            sock.recv(1, _PEEK)
        except (BlockingIOError, InterruptedError):
            return sock  # open and silent
        except OSError:  # refused, reset, or still connecting
            pass
    sock.close()
    return None


def _open_spare(family: int, address: tuple[object, ...], now: float) -> None:
    if address in _SPARES:
        return
    try:
        _SPARES[address] = _connect(family, address), now
    except OSError:  # the server is not listening (yet): the next request connects itself
        pass


class _Exchange:
    """One request to the user's server on a connection of its own, and the head of its answer
    (with the whole body when that is small and of known length), driven by the loop's readiness
    callbacks on a plain socket: no transport, protocol, stream or task is made for it, the
    request goes out in the same callback that sees the connection made, and head and body are
    parsed from one buffer. A body to stream is handed to a StreamReader (`response()`).

    The request goes out in one send, head and body together: a body sent apart is a second
    segment, and when the server's accept queue is full (its listen backlog is small; Python's
    http.server has 5) the kernel answers for the queue with a SYN cookie, drops the segment
    that carries it, and resets the connection on the next one, which no cookie matches."""

    __slots__ = ("loop", "request", "method", "sock", "sent", "received", "buffer", "head", "status",
                 "headers", "kind", "length", "wanted", "done", "_timer", "_reading", "_writing")

    def __init__(self, loop: asyncio.AbstractEventLoop, request: bytes, method: str):
        self.loop = loop
        self.request = request
        self.method = method
        self.sock: socket.socket | None = None
        self.sent = 0  # bytes of the request the kernel took: while 0, the server cannot have read any
        self.received = False  # any byte of an answer came back
        self.buffer = bytearray()
        self.head = 0  # the final answer's head is buffer[:head], once parsed
        self.status = 0
        self.headers: list[Header] = []
        self.kind = ""  # the answer's framing (response_framing), once its head is parsed
        self.length: int | None = None
        self.wanted = -1  # body bytes to read whole before answering; -1: the body is streamed
        self.done: asyncio.Future[None] = loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._reading = self._writing = False

    def start(self, family: int, address: tuple[object, ...], timeout: float) -> None:
        now = self.loop.time()
        try:
            self.sock = _take_spare(address, now) or _connect(family, address)
        except OSError as exc:  # refused at once: nothing was sent
            self._fail(exc)
            return
        self._timer = self.loop.call_later(timeout, self._timed_out)
        self._writable()
        _open_spare(family, address, now)

    def resendable(self, exc: BaseException) -> bool:
        """Whether the request can be sent again: none of it left (a refused connection, a reset
        before the first send), or it is idempotent (RFC 9110 §9.2.2) and the connection ended
        or was reset before any byte of an answer: what proxy_next_upstream does by default."""
        if isinstance(exc, (UpstreamError, asyncio.TimeoutError)) or not isinstance(exc, OSError):
            return False
        if not self.sent:
            return True
        return self.method in IDEMPOTENT and not self.received and isinstance(exc, ConnectionError)

    def _writable(self) -> None:
        sock = self.sock
        assert sock is not None
        try:
            while self.sent < len(self.request):
                self.sent += sock.send(memoryview(self.request)[self.sent:] if self.sent else self.request)
        except (BlockingIOError, InterruptedError):  # still connecting, or the socket buffer is full
            if not self._writing:
                self.loop.add_writer(sock.fileno(), self._writable)
                self._writing = True
            return
        except OSError as exc:  # a refused connection shows here (sock_error), with nothing sent
            self._fail(exc)
            return
        if self._writing:
            self.loop.remove_writer(sock.fileno())
            self._writing = False
        self.loop.add_reader(sock.fileno(), self._readable)
        self._reading = True

    def _readable(self) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        if not data:
            self._eof()
            return
        self.received = True
        self.buffer += data
        if not self.kind:
            try:
                self._parse_head()
            except UpstreamError as exc:
                self._fail(exc)
                return
        if self.kind and len(self.buffer) - self.head >= self.wanted:
            self._finish()

    def _parse_head(self) -> None:
        """Parse the final answer's head once it is all in, as strictly as a request's; interim
        (1xx) answers are dropped. A line ending in a bare LF is refused at once (it would never
        complete a CRLF CRLF)."""
        buffer = self.buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            head = buffer if end < 0 else buffer[:end + 2]
            if head.count(b"\n") != head.count(b"\r\n"):
                raise UpstreamError("malformed upstream response head: a line ends in a bare LF")
            if (len(buffer) if end < 0 else end + 4) > MAX_HEAD:
                raise UpstreamError("malformed upstream response head: larger than 64 KiB")
            if end < 0:
                return
            first = head.find(b"\n") + 1
            try:
                _, status = parse_status_line(bytes(head[:first]))
                headers = parse_header_block(bytes(head[first:]))
                if 100 <= status < 200 and status != 101:
                    del buffer[:end + 4]
                    continue
                kind, length = response_framing(status, self.method, headers)
            except BadRequest as exc:
                raise UpstreamError(f"malformed upstream response head: {exc}") from None
            self.status, self.headers, self.kind, self.length, self.head = status, headers, kind, length, end + 4
            if kind == "none":
                self.wanted = 0
            elif kind == "length" and length is not None and length <= WHOLE_BODY_BYTES:
                self.wanted = length
            return

    def _eof(self) -> None:
        if not self.kind:
            what = f"after {len(self.buffer)} bytes of its answer's head" if self.received else "without answering"
            self._fail(ConnectionResetError(f"the server closed the connection {what}"))
        elif self.wanted >= 0:
            missing = self.wanted - (len(self.buffer) - self.head)
            self._fail(ConnectionResetError(f"upstream closed with {missing} bytes missing"))
        else:
            self._finish()  # a body delimited by the close: the StreamReader will see its end

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(asyncio.TimeoutError("no answer within the proxy's read timeout"))

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.sock is not None and (self._reading or self._writing):
            if self._reading:
                self.loop.remove_reader(self.sock.fileno())
            if self._writing:
                self.loop.remove_writer(self.sock.fileno())
            self._reading = self._writing = False

    def _finish(self) -> None:
        self._stop()
        if self.wanted >= 0:
            self.close()  # everything is read: the connection has nothing more to give
        if not self.done.done():
            self.done.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        self.close()
        if not self.done.done():
            self.done.set_exception(exc)

    def close(self) -> None:
        self._stop()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    async def response(self) -> UpstreamResponse:
        headers = forwarded(self.headers)
        if self.wanted >= 0:
            return UpstreamResponse(self.status, headers, bytes(self.buffer[self.head:self.head + self.wanted]))
        sock, self.sock = self.sock, None
        assert sock is not None
        reader = asyncio.StreamReader(limit=MAX_HEAD)
        if len(self.buffer) > self.head:
            reader.feed_data(bytes(self.buffer[self.head:]))  # before the transport reads anything
        try:
            transport, _ = await self.loop.create_connection(lambda: asyncio.StreamReaderProtocol(reader), sock=sock)
        except BaseException:
            sock.close()
            raise
        stream = _read_body(reader, transport.close, self.length, self.kind == "chunked")
        return UpstreamResponse(self.status, headers, stream=stream, length=self.length)


async def request_upstream(host: str, port: int, method: str, target: str,
                           headers: list[Header], body: bytes, timeout: float = READ_TIMEOUT,
                           retries: int = len(RETRY_DELAYS),
                           on_retry: Callable[[BaseException], object] | None = None) -> UpstreamResponse:
    """Send one request to the user's server; raise OSError when it does not accept connections
    (UpstreamError, an OSError too, when it answers with a malformed response). A request that
    provably did not reach it (_Exchange.resendable) is sent again, up to `retries` times, after
    a short pause; `on_retry(error)` is told of each."""
    loop = asyncio.get_running_loop()
    family, address = _ADDRESSES.get((host, port)) or await _resolve(host, port)
    sent = forwarded(headers)
    sent += [("Content-Length", str(len(body)))] if body or method in ("POST", "PUT", "PATCH") else []
    sent.append(("Connection", "close"))
    request = _request_head(method, target, sent, f"{host}:{port}") + body  # one send (see _Exchange)
    attempt = 0
    while True:
        exchange = _Exchange(loop, request, method)
        try:
            exchange.start(family, address, timeout)
            await exchange.done
            return await exchange.response()
        except BaseException as exc:
            exchange.close()
            if attempt >= retries or not isinstance(exc, Exception) or not exchange.resendable(exc):
                raise
            if on_retry is not None:
                on_retry(exc)
        await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
        attempt += 1


class Proxy:
    def __init__(self, host: str, port: int, routes: RouteMap, started: Callable[[], bool]):
        self.host, self.port = host, port
        self.routes = routes
        self._started = started
        self.retries = 0  # requests sent again after their connection failed before reaching the server

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
                                              req.headers.raw, req.body, on_retry=self._retrying)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
            if req.path == "/v1/models/model":
                return not_ready("model").response()
            log.warning("upstream %s:%d did not answer %s %s: %s", self.host, self.port,
                        req.method, target, exc)
            return error_response(502, f"the model server on port {self.port} is not reachable: "
                                       f"{type(exc).__name__}", DOWNSTREAM)
        if upstream.stream is None:
            return HttpResponse(upstream.status, upstream.body, upstream.headers)
        return StreamResponse(upstream.status, upstream.stream, upstream.headers, content_type=None,
                              length=upstream.length)

    def _retrying(self, exc: BaseException) -> None:
        self.retries += 1
        log.info("the model server on port %d dropped a request before reading it (%s: %s); sending it again",
                 self.port, type(exc).__name__, exc)

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
            async for data in _read_body(up_reader, up_writer.close, length, kind == "chunked"):
                client_writer.write(data)
                await client_writer.drain()
        except (OSError, asyncio.IncompleteReadError) as exc:  # the head is out: closing tells the client
            log.warning("upstream response to a refused upgrade ended early: %s", exc)
