"""Failures of the transfer engine.

Errors raised while fetching one request are sorted into two kinds, because the retry policy
depends only on that: transient ones (5xx, resets, stalls, truncated bodies) are retried with
backoff; permanent ones (401/403/404, a size that contradicts the manifest) fail the file at once,
since retrying a wrong credential only delays the message the user needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .results import FetchResult


class FetchError(Exception):
    """One request or one file failed; `transient` decides whether it is retried."""

    transient = True

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.retry_after: float | None = None  # seconds the server asked us to wait


class TransientError(FetchError):
    transient = True


class PermanentError(FetchError):
    transient = False


class DigestMismatch(FetchError):
    """The complete file does not match the manifest; the whole file is fetched again."""

    transient = True


@dataclass(frozen=True)
class FileFailure:
    destination: str
    source: str
    cause: str
    attempts: int = 1

    def format(self) -> str:
        return f"{self.destination} ({self.source}): {self.cause}"


class TransferFailed(Exception):
    """Some files could not be fetched or verified; lists every failed file with its cause.

    `result` carries what did succeed, so callers can report partial progress.
    """

    def __init__(self, failures: list[FileFailure], result: FetchResult | None = None):
        self.failures = list(failures)
        self.result = result
        super().__init__(self.summary())

    def summary(self) -> str:
        count = len(self.failures)
        lines = [f"{count} file{'s' if count != 1 else ''} could not be fetched:"]
        lines += [f"  {f.format()}" for f in self.failures]
        return "\n".join(lines)
