"""The async client of chain calls: aiohttp, keep-alive connections pooled per dependency and
event loop (Truss's chainlets call through aiohttp too).

Only images of chainlets that call other services have this module (chains_codegen copies it
there, and the build adds aiohttp for its import, as Truss's image has it); remote_session.py
imports it at the first async call.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Optional

import aiohttp

from .http_client import TLSVerificationError, _Target, _Transient, keepalive_expiry, tls_context

# aiohttp's own timeouts are off: the session bounds each call with asyncio (RPCOptions.timeout_sec
# for the head, the rest of it for a unary body, an idle limit between stream chunks).
_NO_TIMEOUT = aiohttp.ClientTimeout()
_DNS_CACHE_SECONDS = 300  # as Truss's chainlets


class AsyncResponse:
    """A response whose head has arrived; close() gives its connection back to the pool when the
    whole body has arrived, and drops it otherwise."""

    def __init__(self, response: aiohttp.ClientResponse):
        self._response = response
        self.status = response.status

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._response.content.iter_any():
                yield data
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    def close(self) -> None:
        # release() keeps the connection only when the whole body has arrived (aiohttp checks).
        self._response.release()


class AsyncClient:
    """POSTs to one target from one event loop, over pooled keep-alive connections."""

    def __init__(self, target: _Target, max_connections: int):
        self._target = target
        self._max_connections = max_connections
        self._session: Optional[aiohttp.ClientSession] = None
        self._closer: Optional[AsyncIterator[None]] = None

    def _open_session(self) -> aiohttp.ClientSession:
        tls: ssl.SSLContext | bool = tls_context() if self._target.scheme == "https" else True
        connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0, ssl=tls,
                                         keepalive_timeout=keepalive_expiry(),
                                         ttl_dns_cache=_DNS_CACHE_SECONDS)
        # As before pooling: no Accept-Encoding (bodies travel as the callee writes them) and no
        # cookies (a cookie one answer sets is never sent with another call).
        return aiohttp.ClientSession(connector=connector, timeout=_NO_TIMEOUT,
                                     skip_auto_headers=("Accept-Encoding",),
                                     cookie_jar=aiohttp.DummyCookieJar())

    async def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._open_session()
            # The loop closes every async generator it started before it stops
            # (loop.shutdown_asyncgens, called by asyncio.run): this one closes the session
            # there, so its connections end cleanly instead of warning at garbage collection.
            self._closer = _close_at_loop_shutdown(self._session)
            await self._closer.__anext__()
        return self._session

    async def open(self, headers: dict[str, str], body: bytes) -> AsyncResponse:
        """POST and wait for the response head. Failures before it are _Transient, except a
        certificate that fails verification (TLSVerificationError: retrying cannot help)."""
        session = await self._session_for_loop()
        try:
            response = await session.post(self._target.url, data=body, headers=headers,
                                          allow_redirects=False)
        except ssl.SSLCertVerificationError as exc:
            raise TLSVerificationError(self._target, exc) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise _Transient(f"the connection failed before a response: {type(exc).__name__}: {exc}") from exc
        return AsyncResponse(response)


async def _close_at_loop_shutdown(session: aiohttp.ClientSession) -> AsyncIterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(aiohttp.ClientError, OSError, RuntimeError):
            await session.close()
