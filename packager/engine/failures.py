"""EngineError subclasses carrying what a caller needs to show a failure well."""

from __future__ import annotations

from packager.errors import EngineError

# How many output lines of a failing step an error keeps: enough to show a pip or compiler error,
# few enough for a terminal.
FAILURE_TAIL_LINES = 25


class BuildFailedError(EngineError):
    """A build step failed. `step` names it; `log_tail` holds its last output lines."""

    def __init__(self, message: str, *, step: str | None, log_tail: list[str], hint: str | None = None):
        self.step = step
        self.log_tail = list(log_tail)
        text = message
        if log_tail:
            text += "\n" + "\n".join(f"  | {line}" for line in log_tail)
        super().__init__(text, hint)
        # `message` stays the one-line summary; str() shows the tail too.
        self.summary = message


class MissingCapabilityError(EngineError):
    """The build needs builder features (secret or cache mounts, COPY --link…) this engine lacks."""

    def __init__(self, message: str, *, missing: list[str], hint: str | None = None):
        self.missing = list(missing)
        super().__init__(message, hint)


class EngineUnavailableError(EngineError):
    """No Docker engine answers."""
