"""The clients of chain calls: keep-alive connections pooled per dependency, and the failure
they raise when nothing of a request was processed and a retry is safe.

* async: aiohttp (async_http.py), imported at the first async call (remote_session); only images
  of chainlets that call other services have it (chains_codegen, and the build's implicit Truss
  packages).
* sync: http.client (the standard library's parser), pooled here (SyncPool).

A pooled connection that the server closed while it sat idle is never used: it is dropped when
taken (its socket reads as closed) or once idle for keepalive_expiry(). A connection that breaks
before any response byte is the session's transient failure, retried under RPCOptions.retries.
TLS: the certificate and the host name are verified against the system's CAs, or SSL_CERT_FILE /
SSL_CERT_DIR when set (tls_context).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

KEEPALIVE_ENV = "PACK_CHAINS_KEEPALIVE_SECONDS"
# Below the 5 s after which uvicorn (Truss's server) closes an idle connection: the client lets
# a connection go first, so it seldom sends on one the server is closing at that moment.
KEEPALIVE_SECONDS = 4.0
MAX_IDLE_CONNECTIONS = 50  # kept per dependency (sync); as Truss's max_keepalive_connections


class _Transient(Exception):
    """A failure worth retrying (nothing of the request was processed, or the server said so)."""


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str
    url: str

    @classmethod
    def parse(cls, url: str) -> _Target:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(parts.scheme, parts.hostname, port, path, url)


class TLSVerificationError(ConnectionError):
    """The server's certificate or host name did not verify: not retried (it cannot change)."""

    def __init__(self, target: _Target, exc: BaseException):
        exc = getattr(exc, "certificate_error", exc)  # aiohttp wraps ssl's error
        reason = getattr(exc, "verify_message", None) or str(exc)
        super().__init__(f"TLS verification of {target.host}:{target.port} failed: {reason}; the "
                         "certificate must be signed by a CA this image trusts (the system's, or "
                         "SSL_CERT_FILE / SSL_CERT_DIR) and name that host")


def keepalive_expiry() -> float:
    """Seconds an idle connection is kept ($PACK_CHAINS_KEEPALIVE_SECONDS, default 4)."""
    try:
        return max(0.0, float(os.environ.get(KEEPALIVE_ENV, "") or KEEPALIVE_SECONDS))
    except ValueError:
        return KEEPALIVE_SECONDS


def tls_context() -> ssl.SSLContext:
    """The verifying context for https dependencies, from SSL_CERT_FILE / SSL_CERT_DIR as they
    are now (loading a CA bundle is slow: one context per setting, shared)."""
    return _tls_context(os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)


@functools.lru_cache(maxsize=4)
def _tls_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    # The rule of the image's downloads (packager/runtime/transfer/http_pool.py), which already
    # verifies certificates and host names this way.
    from packager.runtime.transfer.http_pool import ssl_context

    env = {k: v for k, v in (("SSL_CERT_FILE", cafile), ("SSL_CERT_DIR", capath)) if v}
    return ssl_context(env)


class SyncPool:
    """Idle keep-alive connections to one target for sync calls (http.client), shared by the
    threads that call it; a connection serves one call at a time."""

    def __init__(self, target: _Target, max_idle: int = MAX_IDLE_CONNECTIONS):
        self._target = target
        self._max_idle = max_idle
        self._idle: list[tuple[http.client.HTTPConnection, float]] = []  # (connection, idle since)
        self._lock = threading.Lock()
        self.opened = 0  # connections made, for tests and benchmarks

    def _new(self, timeout: float) -> http.client.HTTPConnection:
        t = self._target
        self.opened += 1
        if t.scheme == "https":
            return http.client.HTTPSConnection(t.host, t.port, timeout=timeout, context=tls_context())
        return http.client.HTTPConnection(t.host, t.port, timeout=timeout)

    def _take_idle(self) -> http.client.HTTPConnection | None:
        oldest = time.monotonic() - keepalive_expiry()
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn, since = self._idle.pop()  # the most recently used: the likeliest alive
            if since >= oldest and conn.sock is not None and not _reads_closed(conn.sock):
                return conn
            conn.close()

    @contextlib.contextmanager
    def connection(self, timeout: float) -> Iterator[http.client.HTTPConnection]:
        """A connection for one request; back to the pool if the response was read to its end
        and the server keeps it open, closed otherwise (also when the block raises)."""
        conn = self._take_idle()
        if conn is None:
            conn = self._new(timeout)
        else:
            assert conn.sock is not None
            conn.sock.settimeout(timeout)
            conn.timeout = timeout
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        # http.client drops the socket of a response that ends the connection (Connection: close,
        # HTTP/1.0, a body read to EOF).
        if conn.sock is None:
            return
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()


def _reads_closed(sock: socket.socket) -> bool:
    """Whether an idle connection's socket has something to read: the server closed it (EOF or
    reset) or sent bytes nobody asked for; either way it cannot carry a request."""
    poller = select.poll()  # not select.select: a socket numbered past 1024 is fine here
    try:
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True
