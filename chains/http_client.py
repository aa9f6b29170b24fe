"""A small asyncio HTTP/1.1 client (the standard library only, so the image needs nothing more),
and the failure it raises when nothing of a request was processed and a retry is safe."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Optional


class _Transient(Exception):
    """A failure worth retrying (nothing of the request was processed, or the server said so)."""


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str
    host_header: str

    @classmethod
    def parse(cls, url: str, host_override: Optional[str] = None) -> _Target:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        default_port = port == (443 if parts.scheme == "https" else 80)
        host_header = host_override or (parts.hostname if default_port else f"{parts.hostname}:{port}")
        return cls(parts.scheme, parts.hostname, port, path, host_header)


class _AsyncResponse:
    def __init__(self, status: int, headers: dict[str, str], reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter):
        self.status = status
        self.headers = headers
        self._reader = reader
        self._writer = writer

    async def chunks(self) -> AsyncIterator[bytes]:
        reader = self._reader
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            while True:
                size_line = await reader.readline()
                if not size_line:
                    raise ConnectionError("the connection closed inside a chunked body")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                data = await reader.readexactly(size)
                await reader.readexactly(2)
                yield data
        elif "content-length" in self.headers:
            remaining = int(self.headers["content-length"])
            while remaining > 0:
                data = await reader.read(min(remaining, 1 << 16))
                if not data:
                    raise ConnectionError("the connection closed before the whole body arrived")
                remaining -= len(data)
                yield data
        else:
            while data := await reader.read(1 << 16):
                yield data

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    def close(self) -> None:
        # Closing after the event loop has closed raises RuntimeError; the socket goes with the loop.
        with contextlib.suppress(OSError, RuntimeError):
            self._writer.close()


async def _open(target: _Target, method: str, headers: dict[str, str], body: bytes) -> _AsyncResponse:
    """Send the request and read the status line and headers. Failures before any response byte
    are transient."""
    try:
        ssl_ctx = ssl.create_default_context() if target.scheme == "https" else None
        reader, writer = await asyncio.open_connection(target.host, target.port, ssl=ssl_ctx,
                                                       limit=1 << 20)
    except OSError as exc:
        raise _Transient(f"cannot connect to {target.host}:{target.port}: {exc}") from exc
    lines = [f"{method} {target.path} HTTP/1.1", f"Host: {target.host_header}",
             f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise _Transient("the server closed the connection without answering")
        parts = status_line.decode("latin-1").split(" ", 2)
        status = int(parts[1])
        response_headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            key, _, value = line.decode("latin-1").partition(":")
            response_headers[key.strip().lower()] = value.strip()
    except _Transient:
        writer.close()
        raise
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        writer.close()
        raise _Transient(f"the connection failed before a response: {type(exc).__name__}: {exc}") from exc
    return _AsyncResponse(status, response_headers, reader, writer)
