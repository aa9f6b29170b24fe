"""The chain-call client before pooling (chains/http_client.py at commit 96e5531), kept so that
benchmarks/chain_calls.py can measure it beside the pooled one: a new connection per call, the
hand-written asyncio HTTP/1.1 client for async calls, http.client for sync calls. Plugged into
the current session code (RemoteSession), so only the client differs. Not used by pack."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import chains
from chains.http_client import _Target, _Transient
from chains.remote_session import RemoteSession

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
    lines = [f"{method} {target.path} HTTP/1.1", f"Host: {_host_header(target)}",
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


def _host_header(target: _Target) -> str:
    default_port = target.port == (443 if target.scheme == "https" else 80)
    return target.host if default_port else f"{target.host}:{target.port}"


class _PerCallAsync:
    def __init__(self, target: _Target):
        self._target = target

    async def open(self, headers: dict[str, str], body: bytes) -> _AsyncResponse:
        return await _open(self._target, "POST", headers, body)


class _PerCallSync:
    """A fresh http.client connection for each call, closed after it."""

    def __init__(self, target: _Target):
        self._target = target

    @contextlib.contextmanager
    def connection(self, timeout: float) -> Iterator[http.client.HTTPConnection]:
        t = self._target
        cls = http.client.HTTPSConnection if t.scheme == "https" else http.client.HTTPConnection
        conn = cls(t.host, t.port, timeout=timeout)
        try:
            yield conn
        finally:
            conn.close()


class _BeforeSession(RemoteSession):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._sync_pool = _PerCallSync(self._target)  # type: ignore[assignment]

    def _async_http(self) -> Any:
        return _PerCallAsync(self._target)


def before_session(url: str) -> RemoteSession:
    return _BeforeSession(chains.DeployedServiceDescriptor(
        name="Echo", display_name="Echo", options=chains.RPCOptions(retries=0), predict_url=url), None)
