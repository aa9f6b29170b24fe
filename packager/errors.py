"""The user-facing error tree.

Every mistake a user can make surfaces as one of these: a message saying what is wrong, a hint
saying how to fix it, and the exit code the CLI returns. Anything else that escapes is a bug in
pack and is reported as such by the CLI.

    PackError
    ├── ConfigError          config.yaml cannot be read or does not validate (many problems at once)
    ├── PlanError            a model_cache / weights source cannot be resolved or pinned
    ├── RenderError          the build context cannot be written
    ├── EngineError          the Docker engine or build failed
    ├── RegistryError        login / push / pull failed
    ├── TransferError        weights could not be downloaded or verified
    ├── DevLoopError         pack watch lost its dev container's reload control
    ├── DeployError          deployment manifests cannot be rendered as asked (deploy.yaml, flags)
    │   └── UnsupportedKnobError  a knob the chosen target has no field for
    └── UnsupportedError     a platform-only feature pack cannot build locally
"""

from __future__ import annotations

from dataclasses import dataclass, field


class PackError(Exception):
    """Base of every error pack reports to a user (never a traceback)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


@dataclass(frozen=True)
class Problem:
    """One finding about a config file, positioned so an editor can jump to it."""

    file: str
    path: str  # field path, e.g. "model_cache[1].volume_folder"; "" for the whole file
    line: int | None  # 1-based
    column: int | None  # 1-based
    message: str
    hint: str | None = None
    severity: str = "error"  # "error" | "warning"

    def location(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def format(self) -> str:
        field_part = f" {self.path}:" if self.path else ""
        text = f"{self.location()}: {self.severity}:{field_part} {self.message}"
        if self.hint:
            text += f"\n    fix: {self.hint}"
        return text

    def as_dict(self) -> dict[str, str | int | None]:
        return {
            "file": self.file,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class ConfigError(PackError):
    """config.yaml is missing, unreadable or invalid; carries every problem found."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        count = len(self.problems)
        first = self.problems[0].file if self.problems else "config.yaml"
        summary = f"{first}: {count} error{'s' if count != 1 else ''}"
        PackError.__init__(self, summary, None)

    def __str__(self) -> str:
        return "\n".join(p.format() for p in self.problems)


class PlanError(PackError):
    """A weights source could not be listed, resolved or pinned."""


class RenderError(PackError):
    """The build context could not be written."""


class EngineError(PackError):
    """The container engine is missing, or a build or run failed."""


class RegistryError(PackError):
    """A registry refused a login, push or pull."""


class TransferError(PackError):
    """Weights could not be fetched or failed verification."""


class DevLoopError(PackError):
    """pack watch could not patch or reach its dev container."""


class DeployError(PackError):
    """Kubernetes, Knative or KServe manifests cannot be rendered as asked."""


class UnsupportedKnobError(DeployError):
    """A deploy knob the chosen target has no native field for: an error, never dropped."""

    def __init__(self, knob: str, target: str, message: str, hint: str | None = None):
        super().__init__(message, hint)
        self.knob = knob
        self.target = target


class UnsupportedError(PackError):
    """The config asks for a platform-only feature pack cannot build locally (a user error: exit 1;
    2 means a bad command line)."""
