"""http_server's deadline sweep, in process: a keep-alive connection that stays idle between
requests keeps the fast whole-head read (it is not taken for a slow head and moved to
line-by-line reading, which costs its next request a cancelled read and a slower parse), while
one that starts a head and stalls is moved, and its head gets the head deadline."""

from __future__ import annotations

import asyncio

from packager.runtime.serving.http_limits import HttpLimits
from packager.runtime.serving.http_server import HEAD, IDLE, HttpRequest, HttpResponse, HttpServer, Response

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
SWEEPS = 0.7  # long enough for the whole-head wait (0.25 s) and two sweeps (0.25 s apart)


async def _ok(req: HttpRequest) -> Response:
    return HttpResponse(200, b"ok")


async def _answer(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    return head + await asyncio.wait_for(reader.readexactly(2), 10)


def test_idle_keep_alive_connections_keep_the_whole_head_read_and_stalled_heads_do_not():
    async def main() -> None:
        server = HttpServer(_ok, "127.0.0.1", 0, limits=HttpLimits(head_timeout=30.0))
        port = await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(REQUEST)
            assert (await _answer(reader)).startswith(b"HTTP/1.1 200 ")
            await asyncio.sleep(SWEEPS)  # idle between requests, nothing of the next one sent
            (conn,) = server._conns  # noqa: SLF001 - the sweep's own state
            assert conn.phase == IDLE and conn.whole_head and not conn.line_by_line
            writer.write(REQUEST)
            assert (await _answer(reader)).endswith(b"ok")

            writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # a head that stalls
            await asyncio.sleep(SWEEPS)
            assert conn.line_by_line and conn.phase == HEAD and conn.deadline > 0
            writer.write(b"\r\n")
            assert (await _answer(reader)).endswith(b"ok")
        finally:
            writer.close()
            await server.shutdown(1.0)

    asyncio.run(main())
