"""The in-image HTTP server's timeouts and limits (each with a default and an environment
override, named in packager/constants.py), and the once-per-interval log of what they refused.

    PACK_HTTP_HEAD_TIMEOUT            30 s    a whole request head (from the connection, or from
                                              the first line of a later request); then 408
    PACK_HTTP_BODY_TIMEOUT            60 s    a request body going without a byte; then 408
    PACK_HTTP_KEEPALIVE_TIMEOUT       60 s    an idle keep-alive connection before the next request
    PACK_HTTP_SEND_TIMEOUT            60 s    a response (streamed or not) whose client takes none of
                                              what is buffered for it; then the connection is cut
    PACK_HTTP_MAX_CONNECTIONS         2048    open connections; never more than the open-files
                                              limit allows (RLIMIT_NOFILE less a reserve for the model)
    PACK_HTTP_MAX_BODY_BYTES          1 GiB   one request body; larger: 413
    PACK_HTTP_BODY_MEMORY_BYTES       2 GiB   all request bodies held in memory at once; past it: 503
    PACK_HTTP_SHUTDOWN_UPLOAD_TIMEOUT 10 s    after SIGTERM, how long uploads still being read go on

Why these defaults: nginx's client_header_timeout, client_body_timeout and send_timeout are 60 s
(send_timeout, like this one, between two successful writes, not for the whole response); a head that
takes 30 s is already an attack or a broken client. The keep-alive timeout is longer than the idle
expiry of pooled clients (httpx and the chains client: 5 s) so that the client, not the server,
closes an idle connection, and a request never races the close (Truss's uvicorn closes after 5 s).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from packager import constants

from ..image_paths import env_float

GIB = 1024 ** 3
# File descriptors left to the model (its files, sockets, pipes) when the open-files limit bounds
# the connection cap: an eighth of the limit, at least 32.
FD_RESERVE_MIN = 32
FD_RESERVE_FRACTION = 8
LOG_INTERVAL = 10.0  # seconds between two summary lines of refused or timed-out connections


@dataclass(frozen=True)
class HttpLimits:
    head_timeout: float = 30.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 60.0
    send_timeout: float = 60.0
    max_connections: int = 2048
    max_body_bytes: int = GIB
    body_memory_bytes: int = 2 * GIB
    shutdown_upload_timeout: float = 10.0

    @classmethod
    def from_env(cls) -> HttpLimits:
        d = cls()
        return cls(
            head_timeout=_positive(env_float(constants.PACK_HTTP_HEAD_TIMEOUT, d.head_timeout), d.head_timeout),
            body_timeout=_positive(env_float(constants.PACK_HTTP_BODY_TIMEOUT, d.body_timeout), d.body_timeout),
            keepalive_timeout=_positive(env_float(constants.PACK_HTTP_KEEPALIVE_TIMEOUT, d.keepalive_timeout),
                                        d.keepalive_timeout),
            send_timeout=_positive(env_float(constants.PACK_HTTP_SEND_TIMEOUT, d.send_timeout), d.send_timeout),
            max_connections=int(_positive(env_float(constants.PACK_HTTP_MAX_CONNECTIONS, d.max_connections),
                                          d.max_connections)),
            max_body_bytes=int(_positive(env_float(constants.PACK_HTTP_MAX_BODY_BYTES, d.max_body_bytes),
                                         d.max_body_bytes)),
            body_memory_bytes=int(_positive(env_float(constants.PACK_HTTP_BODY_MEMORY_BYTES, d.body_memory_bytes),
                                            d.body_memory_bytes)),
            shutdown_upload_timeout=_positive(env_float(constants.PACK_HTTP_SHUTDOWN_UPLOAD_TIMEOUT,
                                                        d.shutdown_upload_timeout), d.shutdown_upload_timeout),
        )

    def with_max_body(self, max_body_bytes: int) -> HttpLimits:
        return replace(self, max_body_bytes=max_body_bytes)

    def connection_cap(self) -> int:
        """max_connections, lowered so that the connections never take the model's last file
        descriptors (where the open-files limit can be read)."""
        try:
            import resource  # Unix only; images are Linux
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        except (ImportError, OSError, ValueError):
            return self.max_connections
        if soft == resource.RLIM_INFINITY or soft <= 0:
            return self.max_connections
        reserve = max(FD_RESERVE_MIN, soft // FD_RESERVE_FRACTION)
        return max(1, min(self.max_connections, soft - reserve))

    def sweep_interval(self) -> float:
        """How often deadlines are checked: a quarter of the shortest timeout, within 50..250 ms
        (the sweep also moves heads still incomplete after 250 ms to line-by-line reading)."""
        shortest = min(self.head_timeout, self.body_timeout, self.keepalive_timeout, self.send_timeout,
                       self.shutdown_upload_timeout)
        return min(0.25, max(0.05, shortest / 4))


def _positive(value: float, default: float) -> float:
    return value if value > 0 else default


class EventTally:
    """Counts refusals and timeouts by kind; `flush()` logs them as one line at most once per
    LOG_INTERVAL, so a flood of hostile connections costs one log line, not one per attempt."""

    def __init__(self, log: logging.Logger, interval: float = LOG_INTERVAL):
        self._log = log
        self._interval = interval
        self._counts: dict[str, int] = {}
        self._last = 0.0

    def note(self, kind: str) -> None:
        self._counts[kind] = self._counts.get(kind, 0) + 1

    def flush(self, now: float, force: bool = False) -> None:
        if not self._counts or (not force and now - self._last < self._interval):
            return
        summary = ", ".join(f"{count} {kind}" for kind, count in sorted(self._counts.items()))
        self._log.warning("connections refused or closed by the server's limits: %s", summary)
        self._counts.clear()
        self._last = now
