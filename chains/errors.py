"""Exceptions of the Chains API (names as in truss_chains)."""

from __future__ import annotations

import dataclasses
import enum
from typing import Optional

import pydantic


class ErrorKind(str, enum.Enum):
    TYPE_ERROR = "TYPE_ERROR"
    IO_TYPE_ERROR = "IO_TYPE_ERROR"
    MISSING_API_ERROR = "MISSING_API_ERROR"
    INVALID_CONFIG_ERROR = "INVALID_CONFIG_ERROR"


@dataclasses.dataclass(frozen=True)
class ValidationError:
    """One problem of a chainlet class, found when the class was defined (validation.py)."""

    file: str
    line: Optional[int]
    location: str  # "Class" or "Class.method"
    kind: ErrorKind
    message: str

    def format(self) -> str:
        return f"{self.file}:{self.line or 0} ({self.location}) [kind: {self.kind.value}]: {self.message}"


class ChainsUsageError(TypeError):
    """The chain's code does not follow the API (raised at definition, load or push)."""

    # The collected validation errors it reports, structured for tools that position them.
    validation_errors: tuple[ValidationError, ...] = ()


class MissingDependencyError(TypeError):
    """A declared dependency, secret, path or service is not available."""


class ChainsRuntimeError(Exception):
    """The API is used wrongly at run time (e.g. a chainlet instantiated by hand)."""


class ChainsDeploymentError(Exception):
    """Generating, building or deploying a chain failed."""


class GenericRemoteException(Exception):
    """A remote chainlet raised an exception whose class cannot be re-created here."""


class StackFrame(pydantic.BaseModel):
    filename: str
    lineno: Optional[int] = None
    name: str
    line: Optional[str] = None


class RemoteErrorDetail(pydantic.BaseModel):
    """What a chainlet answers (`{"error": <this>}`) when its run_remote raised."""

    exception_cls_name: str
    exception_module_name: Optional[str] = None
    exception_message: str
    user_stack_trace: list[StackFrame] = pydantic.Field(default_factory=list)

    def format(self) -> str:
        lines = ["Chainlet-Traceback (most recent call last):"]
        for frame in self.user_stack_trace:
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line}")
        name = self.exception_cls_name
        if self.exception_module_name and self.exception_module_name != "builtins":
            name = f"{self.exception_module_name}.{name}"
        lines.append(f"{name}: {self.exception_message}")
        return "\n".join(lines)
