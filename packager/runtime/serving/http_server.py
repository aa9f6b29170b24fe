"""A small asyncio HTTP/1.1 server: keep-alive, chunked request and response bodies,
`Expect: 100-continue`, streaming responses that can be aborted, connection take-over for
upgrades, and a graceful drain for SIGTERM.

Hardened against hostile clients: requests are parsed strictly (http_parse: no smuggling through
framing headers, no bare LF, tokens and control-free values), every malformed one is answered
with its 4xx and a closed connection; each connection phase has a deadline (head, body idle,
keep-alive idle, and a response whose client takes none of it: send), checked by one sweep task
rather than a timer per read; connections are capped
(below the open-files limit; at the cap the longest idle one is closed, else the one sending its
head the longest, else 503), and accept() pauses rather than fails in a loop when file
descriptors run out; request bodies are bounded one by one (413) and together (503); SIGTERM
gives uploads still being read a short deadline of their own. Limits: http_limits.HttpLimits.
Refusals and timeouts are logged as one summary line per interval, not one per connection, and
each refusal is reported to `on_refusal` (the request metrics count them).

Why not uvicorn: the runtime is copied into every image and must not add packages that can clash
with the user's requirements, nor import time to a cold start; and a streamed response whose
producer fails must end *without* the terminating chunk, so truncation is visible to the client
(Truss ends such streams as if they had succeeded).

A handler receives an HttpRequest and returns an HttpResponse, a StreamResponse or an Upgrade.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import operator
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, ItemsView, Iterator, KeysView, ValuesView
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Union
from urllib.parse import unquote, urlsplit

from .http_limits import EventTally, HttpLimits
from .http_parse import (
    MAX_HEADER_LINES,
    BadRequest,
    Header,
    parse_chunk_size,
    parse_head,
    parse_header_block,
    parse_request_line,
    request_framing,
    valid_field,
)

log = logging.getLogger("pack.http")

MAX_HEAD_BYTES = 64 * 1024  # a request head, and any one line of it (431 past it)
MAX_BODY_BYTES = HttpLimits.max_body_bytes
BACKLOG = 1024
ACCEPT_BATCH = 64  # connections accepted per readiness event of the listening socket
ACCEPT_PAUSE = 0.5  # seconds accepting pauses when the process is out of file descriptors
# A head is read whole (one read) and parsed in one pass. A head that is not complete this long
# after the wait for it began is read on line by line: a bare LF never completes a whole-head
# read (it waits for CRLF CRLF), and line by line it is refused at once.
WHOLE_HEAD_WAIT = 0.25
# Connection phases: which deadline applies, and which connections may be closed to make room.
# SEND: a response waits for the client to take what was written (send_timeout).
IDLE, HEAD, BODY, BUSY, SEND = "idle", "head", "body", "busy", "send"
# A response body up to this size goes out in the same write (one send) as its head.
COALESCE_BYTES = 64 * 1024
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 36\r\n"
           b"Retry-After: 1\r\nConnection: close\r\n\r\ntoo many connections; retry shortly\n")
RETRY_AFTER = [("Retry-After", "1")]
_NAME, _VALUE = operator.itemgetter(0), operator.itemgetter(1)


class Headers:
    """Case-insensitive, order-preserving request headers (a repeated name joins with ", ")."""

    def __init__(self, items: list[tuple[str, str]]):
        self.raw = items
        # Lower-cased name -> value: a plain dict, so that the server's own lookups (names it
        # writes in lower case) cost a dict lookup, not a method call. Built without a Python loop
        # unless a name repeats (rare: the dict comes out shorter than the list).
        self.lowered: dict[str, str] = dict(zip(map(str.lower, map(_NAME, items)), map(_VALUE, items)))
        if len(self.lowered) != len(items):
            joined: dict[str, str] = {}
            for name, value in items:
                key = name.lower()
                joined[key] = f"{joined[key]}, {value}" if key in joined else value
            self.lowered = joined

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.lowered.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self.lowered[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self.lowered

    def __iter__(self) -> Iterator[str]:
        return iter(self.lowered)

    def __len__(self) -> int:
        return len(self.lowered)

    def keys(self) -> KeysView[str]:
        return self.lowered.keys()

    def values(self) -> ValuesView[str]:
        return self.lowered.values()

    def items(self) -> ItemsView[str, str]:
        return self.lowered.items()


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


async def read_line(reader: asyncio.StreamReader, status: int = 431) -> bytes:
    """One line with its LF (its CR is the parser's to check); a line longer than the reader's
    limit is BadRequest(`status`)."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise BadRequest(status, "line too long") from None


async def read_header_lines(reader: asyncio.StreamReader, used: int = 0) -> list[Header]:
    """The field lines of a head, up to and with its blank line (`used`: bytes of the head read
    already): each line parsed strictly, the head bounded by MAX_HEAD_BYTES and MAX_HEADER_LINES."""
    lines: list[bytes] = []
    readuntil = reader.readuntil
    while True:  # line by line: a bare LF is answered at once, never waited on
        try:
            line = await readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise BadRequest(431, "request head too large") from None
        if line == b"\r\n":
            return parse_header_block(b"".join(lines))
        if not line.endswith(b"\r\n"):  # at once: a bare-LF head has no CRLF blank line to wait for
            raise BadRequest(400, "header line does not end in CRLF (bare LF)")
        used += len(line)
        if used > MAX_HEAD_BYTES or len(lines) >= MAX_HEADER_LINES:
            raise BadRequest(431, "request head too large")
        lines.append(line)


def split_target(target: str) -> tuple[str, str]:
    if target.startswith(("http://", "https://")):  # absolute-form, as sent to proxies
        parts = urlsplit(target)
        return unquote(parts.path or "/"), parts.query
    path, _, query = target.partition("?")
    return unquote(path), query


# Built once: HTTPStatus(status) is an Enum lookup on every response otherwise (about 1% of a
# small request's CPU).
_STATUS_LINES = {int(s): f"HTTP/1.1 {int(s)} {s.phrase}" for s in HTTPStatus}


# Header fields found valid: most responses repeat theirs (a content type, a handler's constant
# headers), and checking a field costs more than writing it. Bounded: values that vary (ids,
# lengths) are checked each time once it is full.
_VALID_FIELDS: set[tuple[str, str]] = set()
VALID_FIELDS_REMEMBERED = 512


def response_head(status: int, headers: list[tuple[str, str]], framing: list[tuple[str, str]] | None = None) -> bytes:
    """The status line and header lines. A header a handler made that cannot be written as it is
    (a CR or LF that would split the response, a name that is no token) is left out and logged;
    `framing`: the server's own (Content-Length, Transfer-Encoding, Connection), written after
    them unchecked."""
    for pair in headers:
        if pair not in _VALID_FIELDS:
            if not valid_field(*pair):
                kept = [(k, v) for k, v in headers if valid_field(k, v)]
                log.warning("response headers left out (not valid in an HTTP head): %s",
                            ", ".join(repr(k) for k, v in headers if (k, v) not in kept)[:200])
                return response_head(status, kept, framing)
            if len(_VALID_FIELDS) < VALID_FIELDS_REMEMBERED:
                _VALID_FIELDS.add(pair)
    lines = [_STATUS_LINES.get(status) or f"HTTP/1.1 {int(status)} Unknown"]
    lines += [f"{k}: {v}" for k, v in headers]
    if framing:
        lines += [f"{k}: {v}" for k, v in framing]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _started(reader: asyncio.StreamReader | None) -> bool:
    """Whether the client has sent any of its next request (StreamReader keeps what it received
    and has not handed out in `_buffer`, in every Python version the runtime supports; without it,
    assume it has)."""
    return bool(getattr(reader, "_buffer", True))


def _settled(writer: asyncio.StreamWriter) -> bool:
    """Everything written has gone out and the connection stands: nothing for drain() to wait
    for, nor to report."""
    transport = writer.transport
    return not transport.get_write_buffer_size() and not transport.is_closing()


class _Protocol(asyncio.StreamReaderProtocol):
    """Forgets where a lost connection's error was raised before handing it on. A send that fails
    inside writer.write() raises in the transport, below the frame that streams a response; the
    reader, the drain waiters and the protocol's closed future all keep that error, and its
    traceback would keep the frame (the response, the model's generator) in a cycle with the
    writer until a full collection, never with the cyclic GC off."""

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc.with_traceback(None) if exc is not None else None)


def listen_socket(host: str, port: int) -> socket.socket:
    """A non-blocking listening TCP socket on (host, port), SO_REUSEADDR set as asyncio does."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _Conn:
    """One connection's state for the deadline sweep and the connection cap."""

    __slots__ = ("writer", "reader", "task", "phase", "since", "deadline", "cutoff", "expired", "reserved",
                 "whole_head", "line_by_line", "switching", "unsent", "peer")

    def __init__(self, now: float, deadline: float):
        self.writer: asyncio.StreamWriter | None = None  # set once the transport is made
        self.reader: asyncio.StreamReader | None = None
        self.phase = HEAD
        self.since = now  # when the phase began
        self.deadline = deadline  # loop time at which the phase expires; 0: none
        self.cutoff = 0.0  # a deadline no read can renew (set at shutdown for uploads); 0: none
        self.expired = False  # closed by a timeout or to make room: its read errors are expected
        self.reserved = 0  # request-body bytes this connection holds of the server's budget
        self.task: asyncio.Task[None] | None = None
        self.whole_head = False  # waiting in the whole-head read (since `since`)
        self.line_by_line = False  # read this head line by line (the whole-head read took too long)
        self.switching = False  # the sweep cancelled the whole-head read to switch: not a real cancellation
        self.unsent = 0  # SEND: the write buffer's size when the client last took something
        self.peer: tuple[str, int] | None = None  # the client's address

    def renew(self, now: float, timeout: float) -> None:
        deadline = now + timeout
        self.deadline = min(deadline, self.cutoff) if self.cutoff else deadline


class HttpServer:
    def __init__(self, handler: Handler, host: str, port: int, max_body: int | None = None,
                 limits: HttpLimits | None = None, on_refusal: Callable[[int], object] | None = None):
        """`on_refusal(status)`: called for each request or connection the server answers itself
        (400, 408, 413, 431, 503, 505: malformed, too large, too slow, over a limit), before any
        handler ran (the request metrics count them)."""
        self._handler = handler
        self._on_refusal = on_refusal
        self._host, self._port = host, port
        self._limits = limits or HttpLimits()
        if max_body is not None:
            self._limits = self._limits.with_max_body(max_body)
        self._max_body = self._limits.max_body_bytes
        self._listener: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Future[None] | None = None
        self._accepting = False
        self._cap = self._limits.max_connections
        self._closing = False
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._conns: set[_Conn] = set()
        self._attaching: set[asyncio.Future[None]] = set()
        self._body_bytes = 0  # request-body bytes held in memory by all connections
        self._tally = EventTally(log)

    @property
    def port(self) -> int:
        assert self._listener is not None
        port: int = self._listener.getsockname()[1]
        return port

    async def start(self) -> int:
        """Listen and accept. The accept loop is the server's own (not asyncio.start_server's):
        at the connection cap it closes an idle connection to make room, or refuses with 503; out
        of file descriptors it pauses instead of logging an error per attempt."""
        self._loop = asyncio.get_running_loop()
        self._listener = listen_socket(self._host, self._port)
        self._cap = self._limits.connection_cap()
        self._resume_accepting()
        self._sweeper = asyncio.ensure_future(self._sweep())
        return self.port

    @property
    def active_requests(self) -> int:
        return self._active

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    async def shutdown(self, timeout: float) -> bool:
        """Stop accepting; close idle connections and those still sending a head; give uploads
        still being read `shutdown_upload_timeout` s more; wait up to `timeout` s for requests in
        flight (streams included) to finish; True when all of them did."""
        self._closing = True
        self._stop_accepting()
        if self._listener is not None:
            self._listener.close()
        assert self._loop is not None
        now = self._loop.time()
        for conn in list(self._conns):
            if conn.phase in (IDLE, HEAD) and conn.writer is not None:
                conn.expired = True
                conn.writer.close()
            elif conn.phase == BODY:
                conn.cutoff = now + self._limits.shutdown_upload_timeout
                conn.deadline = min(conn.deadline, conn.cutoff) if conn.deadline else conn.cutoff
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            drained = True
        except asyncio.TimeoutError:
            drained = False
        for conn in list(self._conns):
            if conn.writer is not None:
                conn.expired = True
                conn.writer.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._tally.flush(self._loop.time(), force=True)
        return drained

    # --- accepting -----------------------------------------------------------------------------
    def _resume_accepting(self) -> None:
        if self._closing or self._accepting or self._listener is None or self._loop is None:
            return
        self._loop.add_reader(self._listener.fileno(), self._accept)
        self._accepting = True

    def _stop_accepting(self) -> None:
        if self._accepting and self._listener is not None and self._loop is not None:
            self._loop.remove_reader(self._listener.fileno())
        self._accepting = False

    def _accept(self) -> None:
        assert self._listener is not None and self._loop is not None
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._stop_accepting()
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    if self._make_room("out of file descriptors"):
                        # The closed connection's descriptor is freed by a callback queued
                        # before this one: accept again right after it.
                        self._loop.call_soon(self._resume_accepting)
                    else:
                        self._tally.note("accept pauses (out of file descriptors, none idle)")
                        self._loop.call_later(ACCEPT_PAUSE, self._resume_accepting)
                else:  # ECONNABORTED and the like: that one connection is gone
                    self._tally.note(f"accept errors ({errno.errorcode.get(exc.errno or 0, exc)})")
                    self._loop.call_soon(self._resume_accepting)
                return
            if len(self._conns) >= self._cap and not self._make_room(f"at the cap of {self._cap} connections"):
                self._tally.note(f"connections refused with 503 (at the cap of {self._cap})")
                self._refused(503)
                try:
                    sock.setblocking(False)
                    sock.send(REFUSAL)
                except OSError:
                    pass
                sock.close()
                continue
            self._open(sock)

    def _make_room(self, why: str) -> bool:
        """Close the connection idle the longest, else the one sending its head the longest
        (slowloris); False when every connection is busy with a request."""
        candidates = [c for c in self._conns if c.phase in (IDLE, HEAD) and c.writer is not None and not c.expired]
        if not candidates:
            return False
        victim = min([c for c in candidates if c.phase == IDLE] or candidates, key=lambda c: c.since)
        kind = "idle connections" if victim.phase == IDLE else "connections still sending a head"
        self._tally.note(f"{kind} closed to make room ({why})")
        self._close_expired(victim)
        return True

    def _open(self, sock: socket.socket) -> None:
        assert self._loop is not None
        now = self._loop.time()
        conn = _Conn(now, now + self._limits.head_timeout)
        self._conns.add(conn)
        reader = asyncio.StreamReader(limit=MAX_HEAD_BYTES)
        protocol = _Protocol(reader, functools.partial(self._connection, conn))
        task = asyncio.ensure_future(self._attach(sock, protocol, conn))
        self._attaching.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._attaching.discard)

    async def _attach(self, sock: socket.socket, protocol: asyncio.StreamReaderProtocol, conn: _Conn) -> None:
        assert self._loop is not None
        try:
            await self._loop.connect_accepted_socket(lambda: protocol, sock)
        except OSError:  # the client left before the transport was made
            self._conns.discard(conn)
            sock.close()

    # --- deadlines -----------------------------------------------------------------------------
    async def _sweep(self) -> None:
        """Close connections past their phase's deadline (head, body, keep-alive idle); log the
        tally of refusals and timeouts once per interval."""
        assert self._loop is not None
        interval = self._limits.sweep_interval()
        while True:
            await asyncio.sleep(interval)
            now = self._loop.time()
            for conn in self._conns:
                # An idle keep-alive connection whose client sent nothing yet is not a slow head:
                # switching it would read its next request line by line, and cancel a read.
                if conn.whole_head and now - conn.since > WHOLE_HEAD_WAIT and conn.task is not None \
                        and (conn.phase != IDLE or _started(conn.reader)):
                    conn.whole_head, conn.line_by_line, conn.switching = False, True, True
                    conn.task.cancel()
            for conn in [c for c in self._conns if c.deadline and c.deadline <= now and c.writer is not None]:
                if conn.phase == HEAD:
                    self._tally.note("request heads timed out (408)")
                    self._refused(408)
                    self._close_expired(conn, 408, b"request head timeout")
                elif conn.phase == BODY and conn.cutoff and conn.cutoff <= now:
                    self._tally.note("uploads closed at shutdown (503)")
                    self._refused(503)
                    self._close_expired(conn, 503, b"the server is shutting down")
                elif conn.phase == BODY:
                    self._tally.note("request bodies timed out (408)")
                    self._refused(408)
                    self._close_expired(conn, 408, b"request body timeout")
                elif conn.phase == SEND:
                    self._send_expired(conn, now)
                else:
                    self._close_expired(conn)  # an idle keep-alive connection: no reply
            self._tally.flush(now)

    def _refused(self, status: int) -> None:
        if self._on_refusal is not None:
            try:
                self._on_refusal(status)
            except Exception:  # counting must never stop the refusal itself
                log.exception("counting a refusal failed")

    def _close_expired(self, conn: _Conn, status: int = 0, message: bytes = b"") -> None:
        assert conn.writer is not None
        conn.expired = True
        conn.deadline = 0.0
        if status:
            # Only while the connection reads (head or body phase): no response is being written.
            framing = [("Content-Type", "text/plain"), ("Content-Length", str(len(message))),
                       ("Connection", "close")] + (RETRY_AFTER if status == 503 else [])
            conn.writer.write(response_head(status, [], framing) + message)
        if conn.writer.transport.get_write_buffer_size():
            # close() would wait for the client to take what is still buffered: it is not reading.
            conn.writer.transport.abort()
        else:
            conn.writer.close()

    def _send_expired(self, conn: _Conn, now: float) -> None:
        """A response's client has taken nothing for send_timeout: drop what is buffered and the
        connection (the drain waiting on it raises); one that took something gets more time."""
        assert conn.writer is not None
        unsent = conn.writer.transport.get_write_buffer_size()
        if unsent < conn.unsent:
            conn.unsent = unsent
            conn.deadline = now + self._limits.send_timeout
            return
        self._tally.note("responses cut off, their client not reading (send timeout)")
        conn.expired = True
        conn.deadline = 0.0
        conn.writer.transport.abort()

    # --- one connection ----------------------------------------------------------------------
    async def _connection(self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._loop is not None
        conn.writer, conn.reader = writer, reader
        conn.peer = writer.get_extra_info("peername")
        conn.task = asyncio.current_task()
        loop = self._loop
        try:
            while not self._closing:
                try:
                    try:
                        if conn.line_by_line:
                            line = await reader.readuntil(b"\n")
                            if conn.phase == IDLE:  # the keep-alive wait is over: the head has its own deadline
                                conn.phase, conn.deadline = HEAD, loop.time() + self._limits.head_timeout
                            method, target, version = parse_request_line(line)
                            raw_headers = await read_header_lines(reader, len(line))
                        else:
                            conn.whole_head = True
                            try:
                                head = await reader.readuntil(b"\n\r\n")  # the blank line, after any line
                            finally:
                                conn.whole_head = False
                            method, target, version, raw_headers = parse_head(head)
                    except asyncio.LimitOverrunError:
                        raise BadRequest(431, "request head too large") from None
                except asyncio.CancelledError:
                    if not conn.switching or conn.task is None:
                        raise
                    conn.switching = False
                    uncancel = getattr(conn.task, "uncancel", None)  # Python 3.11+
                    if uncancel is not None:
                        uncancel()
                    continue  # nothing was consumed: read the same head line by line
                except BadRequest as exc:
                    if not conn.expired:
                        await self._refuse(conn, writer, exc)
                    break
                except (asyncio.IncompleteReadError, ConnectionError, OSError):
                    break
                self._active += 1
                if self._active == 1:
                    self._idle.clear()
                try:
                    keep_alive = await self._request(conn, reader, writer, method.upper(), target, version,
                                                     raw_headers)
                finally:
                    self._active -= 1
                    if self._active == 0:
                        self._idle.set()
                    if conn.reserved:
                        self._body_bytes -= conn.reserved
                        conn.reserved = 0
                if not keep_alive:
                    break
                conn.phase, conn.since, conn.line_by_line = IDLE, loop.time(), False
                conn.deadline = conn.since + self._limits.keepalive_timeout
        except Exception:  # one broken connection must not reach the loop
            log.exception("connection failed")
        finally:
            self._conns.discard(conn)
            writer.close()

    async def _refuse(self, conn: _Conn, writer: asyncio.StreamWriter, exc: BadRequest) -> None:
        """Answer a request that cannot be served, and close: what follows it on the connection
        cannot be trusted to start where the server thinks it does."""
        self._tally.note(f"requests refused with {exc.status}")
        self._refused(exc.status)
        log.debug("refused with %d: %s", exc.status, exc)
        headers = RETRY_AFTER if exc.status == 503 else []
        await self._reply(conn, writer, HttpResponse(exc.status, f"{exc}\n".encode(), headers,
                                                     "text/plain; charset=utf-8"), False)

    async def _request(self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       method: str, target: str, version: str, raw_headers: list[Header]) -> bool:
        assert self._loop is not None
        headers = Headers(raw_headers)
        lowered = headers.lowered
        try:
            kind, length = request_framing(version, lowered)
            body = b""
            if length != 0:  # a Content-Length body, or a chunked one
                conn.phase = BODY
                conn.renew(self._loop.time(), self._limits.body_timeout)
                if length is not None:
                    self._reserve(conn, length)  # before 100 Continue: refused bodies are not sent
                if version == "HTTP/1.1" and "100-continue" in (lowered.get("expect") or "").lower():
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                if length is None:
                    body = await self._read_chunked(conn, reader)
                else:
                    body = await reader.read(length)  # usually all of it: the body came with the head
                    if len(body) != length:
                        body = await self._read_exactly(conn, reader, length, body)
        except BadRequest as exc:
            if not conn.expired:
                await self._refuse(conn, writer, exc)
            return False
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            if not conn.expired:
                log.warning("client disconnected while sending the request body")
            return False
        conn.phase, conn.deadline = BUSY, 0.0
        connection = lowered.get("connection")
        if connection is None:
            keep_alive = version == "HTTP/1.1"
        else:
            tokens = {t.strip(" \t").lower() for t in connection.split(",")}
            keep_alive = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
        path, query = split_target(target)
        request = HttpRequest(method, target, path, query, version, headers, body, conn.peer, reader, writer)
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
            return await self._stream(conn, writer, response, keep_alive, version, method)
        return await self._reply(conn, writer, response, keep_alive, method, version)

    def _reserve(self, conn: _Conn, size: int) -> None:
        """Count `size` more body bytes against the request's limit (413) and the server's memory
        budget for all bodies together (503)."""
        if conn.reserved + size > self._max_body:
            raise BadRequest(413, f"request body larger than {self._max_body} bytes")
        if self._body_bytes + size > self._limits.body_memory_bytes:
            raise BadRequest(503, "too many request bytes in memory at once; retry shortly")
        conn.reserved += size
        self._body_bytes += size

    async def _read_exactly(self, conn: _Conn, reader: asyncio.StreamReader, size: int, first: bytes = b"") -> bytes:
        """`size` bytes (`first` of them read already), each piece renewing the body deadline (a
        stalled upload times out, a slow one does not)."""
        assert self._loop is not None
        parts = [first] if first else []
        remaining = size - len(first)
        while True:
            if parts:
                conn.renew(self._loop.time(), self._limits.body_timeout)
            data = await reader.read(remaining)
            if not data:
                raise asyncio.IncompleteReadError(b"".join(parts), size)
            parts.append(data)
            remaining -= len(data)
            if not remaining:
                return data if len(parts) == 1 else b"".join(parts)

    async def _read_chunked(self, conn: _Conn, reader: asyncio.StreamReader) -> bytes:
        assert self._loop is not None
        body = []
        while True:
            size = parse_chunk_size(await read_line(reader, 400))
            if size == 0:
                break
            self._reserve(conn, size)
            body.append(await self._read_exactly(conn, reader, size))
            if await reader.readexactly(2) != b"\r\n":
                raise BadRequest(400, "chunk data not followed by CRLF")
            conn.renew(self._loop.time(), self._limits.body_timeout)
        await read_header_lines(reader)  # trailers: checked like headers, then dropped
        return b"".join(body)

    @staticmethod
    def _framing(keep_alive: bool, version: str) -> list[tuple[str, str]]:
        if not keep_alive:
            return [("Connection", "close")]
        return [("Connection", "keep-alive")] if version == "HTTP/1.0" else []

    async def _drain(self, conn: _Conn, writer: asyncio.StreamWriter) -> None:
        """StreamWriter.drain(), bounded: a client that takes nothing of what is buffered for
        send_timeout is cut off by the sweep (this raises ConnectionResetError then). Awaited only
        where _settled() says there is something to wait for (not in the common case, where what
        was written went out at once: no coroutine then)."""
        assert self._loop is not None
        phase, deadline = conn.phase, conn.deadline
        conn.phase, conn.unsent = SEND, writer.transport.get_write_buffer_size()
        conn.deadline = self._loop.time() + self._limits.send_timeout
        try:
            await writer.drain()
        finally:
            if not conn.expired:
                conn.phase, conn.deadline = phase, deadline

    async def _reply(self, conn: _Conn, writer: asyncio.StreamWriter, response: HttpResponse, keep_alive: bool,
                     method: str = "GET", version: str = "HTTP/1.1") -> bool:
        body = response.body
        headers = response.headers
        if response.content_type:
            headers = [*headers, ("Content-Type", response.content_type)]
        framing = [("Content-Length", str(len(body)))]
        if not keep_alive or version == "HTTP/1.0":
            framing += self._framing(keep_alive, version)
        head = response_head(response.status, headers, framing)
        try:
            if method == "HEAD" or not body:
                writer.write(head)
            elif len(body) <= COALESCE_BYTES:
                writer.write(head + body)  # one send (a syscall and a TCP segment fewer)
            else:
                writer.write(head)
                writer.write(body)
            if not _settled(writer):
                await self._drain(conn, writer)
        except (ConnectionError, OSError):
            return False
        return keep_alive

    async def _stream(self, conn: _Conn, writer: asyncio.StreamWriter, response: StreamResponse, keep_alive: bool,
                      version: str, method: str) -> bool:
        chunked = response.length is None and version == "HTTP/1.1"
        keep_alive = keep_alive and (chunked or response.length is not None)
        headers = response.headers
        if response.content_type:
            headers = [*headers, ("Content-Type", response.content_type)]
        framing = self._framing(keep_alive, version)
        if chunked:
            framing.insert(0, ("Transfer-Encoding", "chunked"))
        elif response.length is not None:
            framing.insert(0, ("Content-Length", str(response.length)))
        completed = False
        try:
            writer.write(response_head(response.status, headers, framing))
            if method != "HEAD":
                async for chunk in response.chunks:
                    if not chunk:
                        continue
                    if chunked:
                        # write(), not writelines(): on Python 3.12 and 3.13.0 a transport's
                        # writelines() never pauses the protocol, so drain() would not wait for a
                        # client that stops reading and the whole stream would pile up here.
                        writer.write(b"%x\r\n" % len(chunk))
                        writer.write(chunk)
                        writer.write(b"\r\n")
                    else:
                        writer.write(chunk)
                    if not _settled(writer):
                        await self._drain(conn, writer)
                if chunked:
                    writer.write(b"0\r\n\r\n")
            if not _settled(writer):
                await self._drain(conn, writer)
            completed = True
        except (ConnectionError, OSError) as exc:
            # The connection's reader keeps this exception; its traceback would keep this frame
            # (the response, its producer) and the reader in a cycle until a full collection.
            exc.__traceback__ = None
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
