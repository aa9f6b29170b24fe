"""Exceptions across chainlets: the callee turns them into RemoteErrorDetail, the caller
re-raises them with the remote traceback in the message (chains-compat §10)."""

from __future__ import annotations

import builtins
import logging
import os
import sys
import traceback
from typing import Any, Optional

from .errors import GenericRemoteException, RemoteErrorDetail, StackFrame

log = logging.getLogger("chains.remote")
CHAINED_HEADER = "(showing chained remote errors, root error at the bottom)"
_FRAMEWORK_DIRS = (os.path.dirname(os.path.abspath(__file__)) + os.sep,)


def _framework_dirs() -> tuple[str, ...]:
    dirs = list(_FRAMEWORK_DIRS)
    packager = sys.modules.get("packager")
    packager_file = packager.__file__ if packager is not None else None
    if packager_file:
        dirs.append(os.path.dirname(os.path.abspath(packager_file)) + os.sep)
    return tuple(dirs)


def _is_framework_frame(filename: str) -> bool:
    path = os.path.abspath(filename)
    if path.startswith(_framework_dirs()):
        return True
    # The generated wrapper (model/model.py) and the interpreter's own machinery.
    return path.endswith(os.sep + os.path.join("model", "model.py")) or filename.startswith("<")


def exception_to_detail(exc: BaseException) -> RemoteErrorDetail:
    frames = [StackFrame(filename=f.filename, lineno=f.lineno, name=f.name, line=f.line)
              for f in traceback.extract_tb(exc.__traceback__) if not _is_framework_frame(f.filename)]
    return RemoteErrorDetail(exception_cls_name=type(exc).__name__,
                             exception_module_name=type(exc).__module__,
                             exception_message=str(exc), user_stack_trace=frames)


def _resolve_class(detail: RemoteErrorDetail) -> Optional[type[Exception]]:
    module_name = detail.exception_module_name or "builtins"
    module = builtins if module_name == "builtins" else sys.modules.get(module_name)
    cls = getattr(module, detail.exception_cls_name, None) if module is not None else None
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        return None
    if cls.__name__ == "ValidationError" and cls.__module__.startswith("pydantic"):
        return None
    return cls


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def remote_message(detail: RemoteErrorDetail, chainlet: str, status: int, trace_id: str) -> str:
    block = detail.format()
    message = detail.exception_message
    nested = ""
    if message.startswith(CHAINED_HEADER):
        # The callee itself re-raised an error from its own dependency: keep that chain below.
        nested = message[len(CHAINED_HEADER):].strip("\n")
        block = block.replace(message, "(re-raised from its dependency, below)")
    parts = [CHAINED_HEADER,
             f"├─ Error calling dependency Chainlet `{chainlet}`, HTTP status={status}, trace ID=`{trace_id}`.",
             _indent(block, "│   ")]
    if nested:
        parts.append(nested.removesuffix("╰").rstrip("\n"))
    parts.append("╰")
    return "\n".join(parts)


def make_remote_exception(detail: RemoteErrorDetail, chainlet: str, status: int,
                          trace_id: str = "-") -> Exception:
    """The exception to raise in the caller: the remote class where it can be re-created."""
    message = remote_message(detail, chainlet, status, trace_id)
    exc: Exception
    if detail.exception_cls_name == "HTTPException":
        # fastapi's class when the chainlet's own code uses fastapi (then it is loaded). Not an
        # import: the framework would make pack install fastapi into every chainlet image.
        fastapi = sys.modules.get("fastapi")
        try:
            exc = (fastapi.HTTPException(status_code=status, detail=message) if fastapi
                   else GenericRemoteException(message))
        except TypeError:  # a fastapi whose HTTPException takes other arguments
            exc = GenericRemoteException(message)
    else:
        cls = _resolve_class(detail)
        try:
            exc = cls(message) if cls is not None else GenericRemoteException(message)
        except Exception:  # noqa: BLE001 - the remote's own exception class: its __init__ may raise anything
            exc = GenericRemoteException(message)
    # Whatever class was re-created, the caller finds the remote detail and status on it.
    vars(exc).update(remote_error=detail, remote_status=status)
    return exc


class HTTPException(Exception):
    """What generated chainlet code raises so the runtime answers `status` with
    `{"error": detail}` (the runtime passes any exception named HTTPException through)."""

    def __init__(self, status_code: int, detail: Any):
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.detail = detail


def to_http_exception(exc: BaseException) -> HTTPException:
    detail = exception_to_detail(exc)
    status = getattr(exc, "status_code", None) if type(exc).__name__ == "HTTPException" else None
    log.error("run_remote raised %s: %s", type(exc).__name__, exc,
              exc_info=(type(exc), exc, exc.__traceback__))
    return HTTPException(status if isinstance(status, int) and status >= 400 else 500,
                         detail.model_dump(mode="json"))
