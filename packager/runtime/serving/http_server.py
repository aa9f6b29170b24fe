"""A small asyncio HTTP/1.1 server: keep-alive, chunked request and response bodies,
`Expect: 100-continue`, streaming responses that can be aborted, connection take-over for
upgrades, and a graceful drain for SIGTERM.

Why not uvicorn: the runtime is copied into every image and must not add packages that can clash
with the user's requirements, nor import time to a cold start; and a streamed response whose
producer fails must end *without* the terminating chunk, so truncation is visible to the client
(Truss ends such streams as if they had succeeded).

A handler receives an HttpRequest and returns an HttpResponse, a StreamResponse or an Upgrade.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, ItemsView, Iterator, KeysView, ValuesView
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Union
from urllib.parse import unquote, urlsplit

log = logging.getLogger("pack.http")

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 ** 3


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Headers:
    """Case-insensitive, order-preserving request headers (a repeated name joins with ", ")."""

    def __init__(self, items: list[tuple[str, str]]):
        self.raw = items
        self._map: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            self._map[key] = f"{self._map[key]}, {value}" if key in self._map else value

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._map.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def keys(self) -> KeysView[str]:
        return self._map.keys()

    def values(self) -> ValuesView[str]:
        return self._map.values()

    def items(self) -> ItemsView[str, str]:
        return self._map.items()


@dataclass
class HttpRequest:
    method: str
    target: str  # as sent: path plus query, percent-encoded
    path: str  # percent-decoded, without the query
    query: str
    version: str
    headers: Headers
    body: bytes = b""
    client: tuple[str, int] | None = None
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None

    def is_disconnected(self) -> bool:
        """True once the client closed its side (the transport reports EOF without a reader)."""
        if self._writer is not None and self._writer.transport.is_closing():
            return True
        return self._reader is not None and self._reader.at_eof()


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = None


@dataclass
class StreamResponse:
    """A body produced piece by piece. If `chunks` raises, the connection is aborted."""

    status: int
    chunks: AsyncIterator[bytes]
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = "application/octet-stream"
    length: int | None = None  # known length: sent with Content-Length instead of chunked
    on_close: Callable[[bool], object] | None = None  # called with True when fully sent; may return a coroutine


@dataclass
class Upgrade:
    """Hand the raw connection to `takeover` (the proxy tunnels WebSocket upgrades this way)."""

    takeover: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


Response = Union[HttpResponse, StreamResponse, Upgrade]  # not `|`: evaluated at run time, on Python 3.9 too
Handler = Callable[[HttpRequest], Awaitable[Response]]


def parse_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha():
        raise BadRequest(400, f"malformed request line {lines[0][:100]!r}")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(505, f"unsupported protocol {version[:20]!r}")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[0] in " \t":
            raise BadRequest(400, f"malformed header line {line[:100]!r}")
        headers.append((name, value.strip()))
    return method.upper(), target, version, headers


def split_target(target: str) -> tuple[str, str]:
    if target.startswith(("http://", "https://")):  # absolute-form, as sent to proxies
        parts = urlsplit(target)
        return unquote(parts.path or "/"), parts.query
    path, _, query = target.partition("?")
    return unquote(path), query


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest(400, "malformed chunk size") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, ignored
                pass
            return bytes(body)
        if len(body) + size > limit:
            raise BadRequest(413, f"request body larger than {limit} bytes")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest(400, "malformed chunk terminator")


class HttpServer:
    def __init__(self, handler: Handler, host: str, port: int, max_body: int = MAX_BODY_BYTES):
        self._handler = handler
        self._host, self._port = host, port
        self._max_body = max_body
        self._server: asyncio.Server | None = None
        self._closing = False
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._idle_writers: set[asyncio.StreamWriter] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._connection, self._host, self._port, limit=MAX_HEAD_BYTES, reuse_address=True)
        return self.port

    @property
    def active_requests(self) -> int:
        return self._active

    async def shutdown(self, timeout: float) -> bool:
        """Stop accepting, close idle connections, wait up to `timeout` s for requests in flight
        (streams included) to finish; True when all of them did."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._idle_writers):
            writer.close()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            drained = True
        except asyncio.TimeoutError:
            drained = False
        for writer in list(self._writers):
            writer.close()
        return drained

    # --- one connection ----------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while not self._closing:
                self._idle_writers.add(writer)
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    await self._reply(writer, HttpResponse(431, b"request head too large"), False)
                    break
                except (asyncio.IncompleteReadError, ConnectionError, OSError):
                    break
                finally:
                    self._idle_writers.discard(writer)
                self._active += 1
                self._idle.clear()
                try:
                    keep_alive = await self._request(reader, writer, head)
                finally:
                    self._active -= 1
                    if self._active == 0:
                        self._idle.set()
                if not keep_alive:
                    break
        except Exception:  # one broken connection must not reach the loop
            log.exception("connection failed")
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> bool:
        try:
            method, target, version, raw_headers = parse_head(head)
            headers = Headers(raw_headers)
            if "100-continue" in (headers.get("expect") or "").lower():
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await self._read_body(reader, headers)
        except BadRequest as exc:
            await self._reply(writer, HttpResponse(exc.status, str(exc).encode()), False)
            return False
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            log.warning("client disconnected while sending the request body")
            return False
        connection = (headers.get("connection") or "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        path, query = split_target(target)
        request = HttpRequest(method, target, path, query, version, headers, body,
                              writer.get_extra_info("peername"), reader, writer)
        try:
            response = await self._handler(request)
        except Exception as exc:  # handlers map errors themselves; this is a bug guard
            log.exception("unhandled error in handler")
            text = f'{{"error": "Unhandled exception: {type(exc).__name__}"}}'
            response = HttpResponse(500, text.encode(), content_type="application/json")
        keep_alive = keep_alive and not self._closing
        if isinstance(response, Upgrade):
            await response.takeover(reader, writer)
            return False
        if isinstance(response, StreamResponse):
            return await self._stream(writer, response, keep_alive, version, method)
        return await self._reply(writer, response, keep_alive, method, version)

    async def _read_body(self, reader: asyncio.StreamReader, headers: Headers) -> bytes:
        if "chunked" in (headers.get("transfer-encoding") or "").lower():
            return await read_chunked(reader, self._max_body)
        length = headers.get("content-length")
        if not length:
            return b""
        if not length.isdigit():
            raise BadRequest(400, f"malformed Content-Length {length[:30]!r}")
        if int(length) > self._max_body:
            raise BadRequest(413, f"request body larger than {self._max_body} bytes")
        return await reader.readexactly(int(length))

    @staticmethod
    def _framing(keep_alive: bool, version: str) -> list[tuple[str, str]]:
        if not keep_alive:
            return [("Connection", "close")]
        return [("Connection", "keep-alive")] if version == "HTTP/1.0" else []

    async def _reply(self, writer: asyncio.StreamWriter, response: HttpResponse, keep_alive: bool,
                     method: str = "GET", version: str = "HTTP/1.1") -> bool:
        headers = list(response.headers)
        if response.content_type:
            headers.append(("Content-Type", response.content_type))
        headers.append(("Content-Length", str(len(response.body))))
        headers += self._framing(keep_alive, version)
        try:
            writer.write(response_head(response.status, headers))
            if method != "HEAD" and response.body:
                writer.write(response.body)
            await writer.drain()
        except (ConnectionError, OSError):
            return False
        return keep_alive

    async def _stream(self, writer: asyncio.StreamWriter, response: StreamResponse, keep_alive: bool, version: str,
                      method: str) -> bool:
        chunked = response.length is None and version == "HTTP/1.1"
        keep_alive = keep_alive and (chunked or response.length is not None)
        headers = list(response.headers)
        if response.content_type:
            headers.append(("Content-Type", response.content_type))
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        elif response.length is not None:
            headers.append(("Content-Length", str(response.length)))
        headers += self._framing(keep_alive, version)
        completed = False
        try:
            writer.write(response_head(response.status, headers))
            if method != "HEAD":
                async for chunk in response.chunks:
                    if not chunk:
                        continue
                    if chunked:
                        writer.writelines([b"%x\r\n" % len(chunk), chunk, b"\r\n"])
                    else:
                        writer.write(chunk)
                    await writer.drain()
                if chunked:
                    writer.write(b"0\r\n\r\n")
            await writer.drain()
            completed = True
        except (ConnectionError, OSError):
            log.info("client went away during a streamed response")
        except Exception as exc:  # noqa: BLE001 - the producer failed mid-stream
            log.error("streamed response aborted (the client sees a truncated body): %s: %s",
                      type(exc).__name__, exc)
            writer.transport.abort()  # no terminating chunk, and a reset: truncation is visible
        finally:
            closer = getattr(response.chunks, "aclose", None)
            if closer is not None:
                try:
                    await closer()
                except Exception:  # noqa: BLE001, S110 - closing a finished producer; nothing to report
                    pass
            if response.on_close is not None:
                outcome = response.on_close(completed)
                if asyncio.iscoroutine(outcome):
                    await outcome
        return keep_alive and completed
