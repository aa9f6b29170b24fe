"""The server's request metrics, counted on the event loop and rendered at /metrics (metrics.py).

One process serves one model, so the counts are process-wide (REQUESTS), as prometheus_client's
default registry is. Everything here is updated on the event loop only: no locks.

Routes are counted by their template ("/v1/models/{name}:predict"), never by the raw path: a
scanner probing random paths must not grow the label set (those all count as "other").
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import defaultdict
from time import monotonic
from typing import Literal

from .model_spec import OPENAI_METHODS

# Seconds: Prometheus's default buckets, stretched to the minutes a large model may take.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
OTHER_ROUTE = "other"
_FIXED_ROUTES = frozenset({"/", "/metrics", "/ping", "/invocations", "/v1/websocket", *OPENAI_METHODS})
_MODELS = "/v1/models/"


def route_of(path: str) -> str:
    """The route template a request path is served by (Truss's routes), else "other"."""
    if path in _FIXED_ROUTES:
        return path
    if path.startswith(_MODELS):
        rest = path[len(_MODELS):]
        name, colon, action = rest.partition(":")
        if colon and name and "/" not in name and action in ("predict", "predict_binary"):
            return _MODELS + "{name}:" + action
        name, slash, sub = rest.partition("/")
        if name and not slash and ":" not in name:
            return _MODELS + "{name}"
        if name and sub in ("loaded", "schema"):
            return _MODELS + "{name}/" + sub
    return OTHER_ROUTE


class Histogram:
    """Counts per bucket (not cumulative; rendering adds them up), their sum and count."""

    def __init__(self, bounds: tuple[float, ...] = DURATION_BUCKETS):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations <= it) for each bound, +Inf last."""
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts):
            running += count
            out.append((bound, running))
        return out


class RequestMetrics:
    """Counted per request on the event loop: every method here is on the hot path, so each is
    written out (no helper calls, counters that need no .get())."""

    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, int], int] = defaultdict(int)  # (route, status) -> finished requests
        self.durations: dict[str, Histogram] = {}  # route -> seconds until the response was sent
        self.in_flight = 0
        self.queued = 0  # predict calls waiting for a predict_concurrency permit now
        self.queue_wait = Histogram()  # seconds each predict waited for its permit
        # status -> requests (or connections) the HTTP layer answered itself, before any route:
        # malformed (400), too slow (408), too large (413, 431), over a limit (503), HTTP/2 (505).
        self.refusals: defaultdict[int, int] = defaultdict(int)

    def started(self) -> float:
        self.in_flight += 1
        return monotonic()

    def finished(self, route: str, status: int, started: float) -> None:
        elapsed = monotonic() - started
        self.in_flight -= 1
        self.requests[route, status] += 1
        histogram = self.durations.get(route)
        if histogram is None:
            histogram = self.durations[route] = Histogram()
        histogram.counts[bisect_left(histogram.bounds, elapsed)] += 1  # Histogram.observe, inlined
        histogram.total += elapsed
        histogram.count += 1

    def refused(self, status: int) -> None:
        self.refusals[status] += 1


REQUESTS = RequestMetrics()


class TimedSemaphore(asyncio.Semaphore):
    """predict_concurrency's permits, counting who waits for one and for how long (REQUESTS)."""

    def take(self) -> bool:
        """Take a free permit at once, as acquire() would (no coroutine to create and await), and
        count a wait of 0 s; False when none is free (then await acquire())."""
        if self.locked():
            return False
        self._value -= 1  # what Semaphore.acquire does when a permit is free
        queue_wait = REQUESTS.queue_wait
        queue_wait.counts[0] += 1  # Histogram.observe(0.0), inlined
        queue_wait.count += 1
        return True

    async def acquire(self) -> Literal[True]:
        if self.take():
            return True
        started = monotonic()
        REQUESTS.queued += 1
        try:
            await super().acquire()
        finally:
            REQUESTS.queued -= 1
        REQUESTS.queue_wait.observe(monotonic() - started)
        return True
