"""Keep-alive HTTP(S) connections, one set per worker thread, proxy- and CA-aware.

Standard library only (this runs in images without requests/urllib3). Each worker thread owns
its connections, so no locking is needed and a connection is reused for the next range as soon
as the previous body was read to the end. Proxies come from HTTPS_PROXY/HTTP_PROXY (either
case) minus NO_PROXY; CAs from SSL_CERT_FILE/SSL_CERT_DIR, else the system store. The process
environment is read from a snapshot and never modified.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from packager import constants


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, parts: SplitResult) -> Origin:
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme {parts.scheme!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        return cls(scheme, (parts.hostname or "").lower(), port)

    @property
    def netloc(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def quick_ack(sock: object) -> None:
    """ACK the response's first segments at once (Linux TCP_QUICKACK, which the kernel clears again
    by itself, so it is set per request). A server that writes a response's head and body in two
    sends without TCP_NODELAY (Python's http.server, many small artifact servers) holds the body
    under Nagle until the head is ACKed; on a kept-alive connection the client's delayed ACK then
    costs 40 ms per request: measured 44 ms for each small file of a hub, against 2 ms."""
    if _QUICKACK is not None and isinstance(sock, socket.socket):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        except OSError:  # not TCP (a proxy's unix socket), or closed meanwhile
            pass


def _env(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name.lower()) or env.get(name.upper()) or None


def ssl_context(env: Mapping[str, str]) -> ssl.SSLContext:
    cafile = env.get(constants.SSL_CERT_FILE) or None
    capath = env.get(constants.SSL_CERT_DIR) or None
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    return ssl.create_default_context()


class ConnectionPool:
    def __init__(self, env: Mapping[str, str], connect_timeout: float, stall_timeout: float):
        self._connect_timeout = connect_timeout
        self._stall_timeout = stall_timeout
        self._proxies = {s: _env(env, f"{s}_proxy") for s in ("http", "https")}
        self._no_proxy = _env(env, "no_proxy") or ""
        self._ssl: ssl.SSLContext | None = None
        self._env = env
        self._local = threading.local()
        self._ssl_lock = threading.Lock()

    def _context(self) -> ssl.SSLContext:
        with self._ssl_lock:  # loading a CA bundle is slow: do it once, share the context
            if self._ssl is None:
                self._ssl = ssl_context(self._env)
            return self._ssl

    def proxy_for(self, origin: Origin) -> str | None:
        proxy = self._proxies.get(origin.scheme)
        if not proxy:
            return None
        if self._no_proxy and urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
            origin.host, {"no": self._no_proxy}
        ):
            return None
        return proxy

    def _conns(self) -> dict[Origin, http.client.HTTPConnection]:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        return conns

    def connection(self, origin: Origin) -> http.client.HTTPConnection:
        conns = self._conns()
        conn = conns.get(origin)
        if conn is None:
            conn = conns[origin] = self._new(origin)
        if conn.sock is None:
            conn.connect()
            # Connect with the connect timeout, then every read waits at most stall_timeout:
            # a connection that goes silent raises instead of hanging forever.
            sock: socket.socket = conn.sock  # type: ignore[assignment]
            sock.settimeout(self._stall_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def request_target(self, origin: Origin, path_and_query: str) -> str:
        """Plain-HTTP requests through a proxy name the absolute URL; everything else the path."""
        if origin.scheme == "http" and self.proxy_for(origin):
            return f"http://{origin.netloc}{path_and_query}"
        return path_and_query

    def _new(self, origin: Origin) -> http.client.HTTPConnection:
        proxy = self.proxy_for(origin)
        timeout = self._connect_timeout
        if proxy:
            p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            if not p.hostname:
                raise ValueError(f"proxy URL {proxy!r} has no host")
            p_port = p.port or (443 if p.scheme == "https" else 80)
            if origin.scheme == "https":
                conn = http.client.HTTPSConnection(
                    p.hostname, p_port, timeout=timeout, context=self._context()
                )
                headers = {}
                if p.username:
                    import base64

                    cred = f"{p.username}:{p.password or ''}".encode()
                    headers["Proxy-Authorization"] = "Basic " + base64.b64encode(cred).decode()
                conn.set_tunnel(origin.host, origin.port, headers=headers)
                return conn
            return http.client.HTTPConnection(p.hostname, p_port, timeout=timeout)
        if origin.scheme == "https":
            return http.client.HTTPSConnection(
                origin.host, origin.port, timeout=timeout, context=self._context()
            )
        return http.client.HTTPConnection(origin.host, origin.port, timeout=timeout)

    def discard(self, origin: Origin) -> None:
        """Close a connection whose state is unknown (error, body not fully read)."""
        conn = self._conns().pop(origin, None)
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def close_thread(self) -> None:
        for origin in list(self._conns()):
            self.discard(origin)
