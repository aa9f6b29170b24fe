"""Ranged GETs over HTTP(S): HF hub files and plain https sources.

Redirects are followed here, not by a library, so the bearer token goes only to the host it
belongs to (the HF_ENDPOINT host) and is dropped when the hub redirects an LFS download to its
CDN. The final URL of a redirect chain is remembered per file, so later ranges go straight to the
CDN; if that remembered (signed, expiring) URL is refused, the chain is followed again once.
"""

from __future__ import annotations

import http.client
import re
import select
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from .errors import PermanentError, TransientError
from .http_pool import ConnectionPool, Origin, quick_ack

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_DRAIN = 64 * 1024
USER_AGENT = "pack-transfer/0.1"


class HttpBody:
    """The body of one 200/206 response; `start`..`end` is the byte span it delivers."""

    def __init__(self, resp: http.client.HTTPResponse, pool: ConnectionPool, origin: Origin,
                 start: int, end: int):
        self._resp, self._pool, self._origin = resp, pool, origin
        self.start, self.end = start, end

    def readinto(self, buf: memoryview) -> int:
        try:
            return self._resp.readinto(buf)
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(f"connection to {self._origin.netloc} failed mid-body: "
                                 f"{type(exc).__name__}: {exc}") from None

    def read_ready(self, buf: memoryview) -> int:
        try:
            if not select.select([self._resp.fp], [], [], 0)[0]:
                return 0
            data = self._resp.read1(len(buf))  # one read: what is there, never a wait
        except (OSError, ValueError, TypeError, http.client.HTTPException):
            return 0
        buf[: len(data)] = data
        return len(data)

    def close(self, complete: bool) -> None:
        # A body read to its end leaves the connection reusable; anything else poisons it.
        if not complete or not self._resp.isclosed():
            self._resp.close()
            self._pool.discard(self._origin)


class HttpSource:
    ranges_known = False  # unknown until the first response (some servers ignore Range)

    def __init__(self, url: str, size: int, pool: ConnectionPool, *, description: str,
                 token: Callable[[], str | None] | None = None, token_host: str | None = None,
                 auth_hint: str = "", max_redirects: int = 10):
        self.url = url
        self.size = size
        self.description = description
        self._pool = pool
        self._token = token
        self._token_host = (token_host or urlsplit(url).netloc).lower()
        self._auth_hint = auth_hint
        self._max_redirects = max_redirects
        self._final_url: str | None = None  # shared by worker threads; a str swap is atomic

    def open(self, start: int, end: int) -> HttpBody:
        remembered = self._final_url
        if remembered:
            try:
                return self._follow(remembered, start, end)
            except PermanentError:
                self._final_url = None  # expired signed URL: ask the origin again
        return self._follow(self.url, start, end)

    def _follow(self, url: str, start: int, end: int) -> HttpBody:
        for _ in range(self._max_redirects + 1):
            parts = urlsplit(url)
            try:
                origin = Origin.of(parts)
            except ValueError as exc:
                raise PermanentError(str(exc)) from None
            headers = {
                "Range": f"bytes={start}-{end - 1}",
                "Accept-Encoding": "identity",
                "User-Agent": USER_AGENT,
            }
            token = self._token() if self._token else None
            if token and origin.netloc == self._token_host:
                headers["Authorization"] = f"Bearer {token}"
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            resp = self._request(origin, self._pool.request_target(origin, path), headers)
            if resp.status in _REDIRECTS:
                location = resp.getheader("Location")
                self._drain(resp, origin)
                if not location:
                    raise TransientError(f"HTTP {resp.status} from {origin.netloc} without Location")
                url = urljoin(url, location)
                continue
            if resp.status in (200, 206):
                body = self._body(resp, origin, start, end)
                if url != self.url:
                    self._final_url = url
                return body
            self._fail(resp, origin)
        raise PermanentError(f"more than {self._max_redirects} redirects from {self.url}")

    def _request(self, origin: Origin, target: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        # A kept-alive connection may have been closed by the server since its last use; one
        # immediate retry on a fresh connection is not a "retry" in the backoff sense.
        for fresh in (False, True):
            try:
                conn = self._pool.connection(origin)
                conn.request("GET", target, headers=headers)
                quick_ack(conn.sock)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._pool.discard(origin)
                if fresh:
                    raise TransientError(f"{origin.netloc}: {type(exc).__name__}: {exc}") from None
            except (OSError, http.client.HTTPException) as exc:
                self._pool.discard(origin)
                raise TransientError(f"{origin.netloc}: {type(exc).__name__}: {exc}") from None
        raise AssertionError("unreachable")

    def _drain(self, resp: http.client.HTTPResponse, origin: Origin) -> None:
        length = resp.getheader("Content-Length")
        try:
            if length is not None and int(length) <= _MAX_DRAIN:
                resp.read()
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        resp.close()
        self._pool.discard(origin)

    def _body(self, resp: http.client.HTTPResponse, origin: Origin, start: int, end: int) -> HttpBody:
        if resp.status == 200:  # Range ignored: the whole object follows
            length = resp.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) != self.size:
                resp.close()
                self._pool.discard(origin)
                raise PermanentError(f"{self.description}: server reports {length} bytes, "
                                     f"manifest says {self.size} (the source changed?)")
            return HttpBody(resp, self._pool, origin, 0, self.size)
        match = _CONTENT_RANGE.fullmatch((resp.getheader("Content-Range") or "").strip())
        if not match:
            resp.close()
            self._pool.discard(origin)
            raise TransientError(f"{origin.netloc}: 206 without a usable Content-Range")
        first, last, total = int(match[1]), int(match[2]), match[3]
        if total != "*" and int(total) != self.size:
            resp.close()
            self._pool.discard(origin)
            raise PermanentError(f"{self.description}: server reports {total} bytes, manifest "
                                 f"says {self.size} (the source changed?)")
        if first != start or last != end - 1:
            resp.close()
            self._pool.discard(origin)
            raise TransientError(f"{origin.netloc}: asked bytes {start}-{end - 1}, got {first}-{last}")
        return HttpBody(resp, self._pool, origin, start, end)

    def _fail(self, resp: http.client.HTTPResponse, origin: Origin) -> None:
        status = resp.status
        self._drain(resp, origin)
        where = f"HTTP {status} {resp.reason} from {origin.netloc} for {self.description}"
        if status == 401:
            raise PermanentError(f"{where}: credentials missing or rejected{self._auth_hint}")
        if status == 403:
            raise PermanentError(f"{where}: access denied (gated or private repo? token lacks "
                                 f"access?){self._auth_hint}")
        if status in (404, 410):
            raise PermanentError(f"{where}: not found at the pinned revision")
        if status == 429 or status >= 500:
            err = TransientError(where)
            retry_after = resp.getheader("Retry-After")
            if retry_after and retry_after.strip().isdigit():
                err.retry_after = float(retry_after)
            raise err
        raise PermanentError(where)
