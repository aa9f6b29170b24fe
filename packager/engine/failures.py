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


class GpuUnavailableError(EngineError):
    """The engine cannot give a container the GPUs it asked for.

    Docker 20.10 without the NVIDIA Container Toolkit creates the container and then refuses
    to start it: `could not select device driver "" with capabilities: [[gpu]]` (HTTP 500;
    `docker info` lists no nvidia runtime). With the toolkit but no driver or too few GPUs,
    the start fails in the toolkit's hook (`nvidia-container-cli: ...`). `detail` is the
    engine's own words.
    """

    def __init__(self, message: str, *, detail: str, hint: str | None = None):
        self.detail = detail
        super().__init__(message, hint)


NO_GPU_RUNTIME_MARKERS = ("could not select device driver", "nvidia-container-cli", "nvidia-container-runtime")
GPU_SETUP_HINT = ("install the NVIDIA driver and the NVIDIA Container Toolkit on the engine's host "
                  "(`nvidia-ctk runtime configure --runtime=docker`, then restart dockerd)")


class PushStreamError(EngineError):
    """A push the engine could not carry out; `detail` is the engine's or the registry's words
    (the registry stage classifies them: auth, not found, network...)."""

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(detail)
