"""Retry for transient source errors only (truss-compat.md §7 #11, #12).

A 404, 401 or "nothing matched" will not change on the next try, so retrying it only delays the
error (Truss waits 3 x 5 s); a 503, 429 or a dropped connection might.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
# Exceptions the HTTP stacks under the source clients (requests, httpx or httpx2 depending on the
# huggingface_hub version; urllib3 under google-cloud) raise for connection-level failures.
# Matched by module name so that no particular version has to be importable.
TRANSPORT_MODULES = frozenset({"requests", "urllib3", "httpx", "httpx2", "httpcore", "httpcore2"})


def is_transport_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in TRANSPORT_MODULES or isinstance(
        exc, (ConnectionError, TimeoutError)
    )


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # total tries, first included
    base_delay: float = 0.5  # seconds; doubled per try, with jitter
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        # Full jitter keeps parallel planners from retrying in lock-step.
        return random.uniform(ceiling / 2, ceiling)


DEFAULT_RETRY = RetryPolicy()


def call_with_retries(
    fn: Callable[[], T],
    is_transient: Callable[[BaseException], bool],
    policy: RetryPolicy = DEFAULT_RETRY,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run fn(); on an exception is_transient() accepts, try again up to policy.attempts times."""
    for attempt in range(policy.attempts):
        try:
            return fn()
        except Exception as exc:
            if attempt + 1 >= policy.attempts or not is_transient(exc):
                raise
            sleep(policy.delay(attempt))
    raise AssertionError("unreachable")  # the loop either returns or raises
