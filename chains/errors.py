"""Exceptions of the Chains API (names as in truss_chains)."""

from __future__ import annotations

from typing import Optional

import pydantic


class ChainsUsageError(TypeError):
    """The chain's code does not follow the API (raised at definition, load or push)."""


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
