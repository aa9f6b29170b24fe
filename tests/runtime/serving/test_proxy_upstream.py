"""The docker_server proxy's exchange with the user's server, in process, over real sockets: the
request leaves in one send (a body sent apart is the segment a full accept queue turns into a
reset); a request that provably never reached the server is sent again (a refused connection, any
method; a reset before any answer, idempotent methods only), one that may have been read is not;
small answers of known length are answered whole (one write, and a 502 rather than a truncated
body when the server closes early), long ones and chunked ones stream as they arrive; interim
answers are dropped and a head split across reads or ending in a bare LF is handled at once."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable

from packager.runtime.serving.http_server import HttpServer
from packager.runtime.serving.proxy import Proxy, RouteMap, request_upstream

Action = Callable[[socket.socket, bytes], None]


def answer(status: str, body: bytes, extra: bytes = b"") -> Action:
    def act(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n" % (status.encode(), len(body), extra) + body)
    return act


def reset(conn: socket.socket, request: bytes = b"") -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close() sends RST


def read_head(conn: socket.socket) -> bytes | None:
    """What arrives up to the end of a request head; None when the connection ends first (one
    the proxy opened ahead and closed unused)."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            more = conn.recv(1 << 20)
        except OSError:
            return None
        if not more:
            return None
        data += more
    return data


class Upstream:
    """A TCP server that treats its n-th connection as `script[n]` says (the last entry repeats):
    it reads the whole request (head and Content-Length body), records it by connection, then
    runs the action; the connection is closed after it."""

    def __init__(self, *script: Action, listen: bool = True):
        self.script = script
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.read: dict[int, bytes] = {}  # connection index -> the request it carried
        self.connections = 0
        if listen:
            self.listen()

    @property
    def requests(self) -> list[bytes]:
        return [self.read[index] for index in sorted(self.read)]

    def listen(self) -> None:
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            index, self.connections = self.connections, self.connections + 1
            self._accepted(conn, index)

    def _accepted(self, conn: socket.socket, index: int) -> None:
        action = self.script[min(index, len(self.script) - 1)]
        threading.Thread(target=self._handle, args=(conn, index, action), daemon=True).start()

    def _handle(self, conn: socket.socket, index: int, action: Action) -> None:
        with conn:
            conn.settimeout(10)
            data = read_head(conn)
            if data is None:
                return
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                body += conn.recv(1 << 20)
            self.read[index] = head + b"\r\n\r\n" + body
            action(conn, data)

    def close(self) -> None:
        self.sock.close()


async def fetch(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                     "Connection: close\r\n\r\n".encode() + body)
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, rest


def proxied(upstream: Upstream, check: Callable[[int, Proxy], Awaitable[None]]) -> Proxy:
    async def main() -> Proxy:
        proxy = Proxy("127.0.0.1", upstream.port, RouteMap("/live", "/ready", "/predict"), lambda: True)
        server = HttpServer(proxy.handle, "127.0.0.1", 0)
        port = await server.start()
        try:
            await check(port, proxy)
        finally:
            await server.shutdown(1.0)
            upstream.close()
        return proxy

    return asyncio.run(main())


class RecordingSocket(socket.socket):
    """A socket that records what each send() took, by the peer's port."""

    sends: list[tuple[int, bytes]] = []

    def send(self, data: bytes, *flags: int) -> int:  # type: ignore[override]
        sent = super().send(data, *flags)
        if self.family == socket.AF_INET:  # not the loop's own wake-up socket pair
            RecordingSocket.sends.append((self.getpeername()[1], bytes(data[:sent])))
        return sent


def test_the_request_head_and_a_small_body_leave_in_one_send(monkeypatch):
    """Sent apart, the body is a second segment: when the server's accept queue is full the kernel
    answers for it with a SYN cookie and resets the connection on that second segment."""
    upstream = Upstream(answer("200 OK", b"ok"))
    monkeypatch.setattr(socket, "socket", RecordingSocket)
    RecordingSocket.sends = []

    async def check(port: int, proxy: Proxy) -> None:
        status, headers, body = await fetch(port, "POST", "/v1/models/model:predict", b'{"text": "hello"}')
        assert (status, headers["content-length"], body) == (200, "2", b"ok")

    proxied(upstream, check)
    (request,) = [data for peer, data in RecordingSocket.sends if peer == upstream.port]
    assert request.startswith(b"POST /predict HTTP/1.1\r\n") and request.endswith(b'\r\n\r\n{"text": "hello"}')
    assert upstream.requests == [request]


def test_a_get_reset_before_any_answer_is_sent_again():
    upstream = Upstream(reset, answer("200 OK", b"second"))

    async def check(port: int, proxy: Proxy) -> None:
        assert (await fetch(port, "GET", "/anything"))[::2] == (200, b"second")

    proxy = proxied(upstream, check)
    assert len(upstream.requests) == 2 and proxy.retries == 1


def test_a_post_the_server_may_have_read_is_not_sent_again():
    upstream = Upstream(reset, answer("200 OK", b"second"))

    async def check(port: int, proxy: Proxy) -> None:
        assert (await fetch(port, "POST", "/v1/models/model:predict", b'{"a": 1}'))[0] == 502

    proxy = proxied(upstream, check)
    assert len(upstream.requests) == 1 and proxy.retries == 0


def test_a_get_reset_after_part_of_an_answer_is_not_sent_again():
    def partial(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-")
        time.sleep(0.1)
        reset(conn)

    upstream = Upstream(partial, answer("200 OK", b"second"))

    async def check(port: int, proxy: Proxy) -> None:
        assert (await fetch(port, "GET", "/anything"))[0] == 502

    proxy = proxied(upstream, check)
    assert len(upstream.requests) == 1 and proxy.retries == 0


def test_retries_are_bounded():
    upstream = Upstream(reset)

    async def check(port: int, proxy: Proxy) -> None:
        assert (await fetch(port, "GET", "/anything"))[0] == 502

    proxy = proxied(upstream, check)
    assert len(upstream.requests) == 3 and proxy.retries == 2


def test_a_refused_connection_is_tried_again_whatever_the_method():
    """A refused connection carried nothing: even a POST goes again (here the server starts
    listening when the proxy is told of the first refusal)."""
    upstream = Upstream(answer("200 OK", b"posted"), listen=False)  # bound, not listening: refused
    refusals: list[BaseException] = []

    def retrying(exc: BaseException) -> None:
        refusals.append(exc)
        upstream.listen()

    async def main() -> None:
        response = await request_upstream("127.0.0.1", upstream.port, "POST", "/p", [], b"{}", on_retry=retrying)
        assert (response.status, response.body, response.stream) == (200, b"posted", None)

    try:
        asyncio.run(main())
    finally:
        upstream.close()
    assert [type(e) for e in refusals] == [ConnectionRefusedError] and len(upstream.requests) == 1


def test_a_small_answer_cut_short_is_a_502_not_a_truncated_body():
    def short(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")

    upstream = Upstream(short)

    async def check(port: int, proxy: Proxy) -> None:
        assert (await fetch(port, "GET", "/anything"))[0] == 502

    proxied(upstream, check)


def test_a_long_answer_streams_before_the_server_has_sent_all_of_it():
    first, rest = b"a" * (256 * 1024), b"b" * (256 * 1024)
    release = threading.Event()

    def slow(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(first) + len(rest)) + first)
        release.wait(10)
        conn.sendall(rest)

    upstream = Upstream(slow)

    async def check(port: int, proxy: Proxy) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 524288\r\n" in head
            assert await asyncio.wait_for(reader.readexactly(len(first)), 10) == first  # the rest held back
            release.set()
            assert await asyncio.wait_for(reader.readexactly(len(rest)), 10) == rest
        finally:
            release.set()
            writer.close()

    proxied(upstream, check)


def test_interim_answers_are_dropped_and_a_head_in_pieces_is_read_whole():
    def pieces(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
        for part in (b"HTTP/1.1 201 Created\r", b"\nX-Up: 1\r\nContent-Le", b"ngth: 4\r\n\r", b"\nbo", b"dy"):
            time.sleep(0.02)
            conn.sendall(part)

    upstream = Upstream(pieces)

    async def check(port: int, proxy: Proxy) -> None:
        status, headers, body = await fetch(port, "POST", "/v1/models/model:predict", b"{}")
        assert (status, headers.get("x-up"), body) == (201, "1", b"body")
        assert "link" not in headers

    proxied(upstream, check)


def test_a_bare_lf_head_is_a_502_at_once_while_the_server_holds_the_connection():
    def bare_lf(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\nContent-Length: 2\n")
        time.sleep(3)

    upstream = Upstream(bare_lf)

    async def check(port: int, proxy: Proxy) -> None:
        started = time.monotonic()
        assert (await fetch(port, "GET", "/anything"))[0] == 502
        assert time.monotonic() - started < 2

    proxied(upstream, check)


def test_answers_without_a_body():
    upstream = Upstream(answer("204 No Content", b""))

    async def check(port: int, proxy: Proxy) -> None:
        assert (await fetch(port, "GET", "/nothing"))[::2] == (204, b"")
        assert (await fetch(port, "HEAD", "/nothing"))[::2] == (204, b"")

    proxied(upstream, check)


class Listener(Upstream):
    """An Upstream whose script says per connection "answer" (with the connection's index as the
    body) or "close" (at once, unread)."""

    def __init__(self, *script: str):
        self.words = script
        super().__init__()

    def _accepted(self, conn: socket.socket, index: int) -> None:
        if self.words[min(index, len(self.words) - 1)] == "close":
            conn.close()
            return
        action = answer("200 OK", str(index).encode())
        threading.Thread(target=self._handle, args=(conn, index, action), daemon=True).start()

    def wait_accepted(self, count: int) -> None:
        deadline = time.monotonic() + 10
        while self.connections < count:
            assert time.monotonic() < deadline, self.connections
            time.sleep(0.005)


def test_the_next_request_goes_out_on_a_connection_opened_ahead_of_it():
    """The handshake and the server's accept are done before the request comes (0.1 ms of each
    answer at one client): the second request is answered on the connection the first one
    opened in advance, accepted before that request was made."""
    upstream = Listener("answer")

    async def check(port: int, proxy: Proxy) -> None:
        assert (await fetch(port, "GET", "/a"))[::2] == (200, b"0")
        await asyncio.get_running_loop().run_in_executor(None, upstream.wait_accepted, 2)
        assert (await fetch(port, "GET", "/b"))[::2] == (200, b"1")

    proxy = proxied(upstream, check)
    assert upstream.read[1].startswith(b"GET /b ") and proxy.retries == 0


def test_a_connection_opened_ahead_that_the_server_closed_is_never_sent_a_request():
    upstream = Listener("answer", "close", "answer")

    async def check(port: int, proxy: Proxy) -> None:
        assert (await fetch(port, "POST", "/v1/models/model:predict", b"{}"))[::2] == (200, b"0")
        await asyncio.get_running_loop().run_in_executor(None, upstream.wait_accepted, 2)
        await asyncio.sleep(0.05)  # the server's close has arrived
        assert (await fetch(port, "POST", "/v1/models/model:predict", b"{}"))[::2] == (200, b"2")

    proxy = proxied(upstream, check)
    assert sorted(upstream.read) == [0, 2] and proxy.retries == 0
