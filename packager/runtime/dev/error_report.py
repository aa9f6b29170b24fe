"""A failed reload, described for the watcher: the error's type and message, where in the truss's
own code it happened (file:line), and the traceback."""

from __future__ import annotations

import traceback
from typing import Optional, TypedDict

from ..serving.missing_module import exception_chain, is_truss_code
from ..serving.missing_module import explain as explain_missing_module


class ErrorReport(TypedDict):
    type: str
    message: str
    file: Optional[str]  # noqa: UP045 - evaluated at run time (TypedDict), on Python 3.9 too
    line: Optional[int]  # noqa: UP045
    traceback: str


def describe(exc: BaseException, code_dirs: tuple[str, ...]) -> ErrorReport:
    """file/line: a SyntaxError's own; otherwise the innermost frame of the truss's code (under
    `code_dirs`: the app and packages dirs), else the innermost frame."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, SyntaxError):
        return ErrorReport(type=type(exc).__name__, message=str(exc.msg or exc), file=exc.filename,
                           line=exc.lineno, traceback=text)
    message = str(exc)
    missing = explain_missing_module(exc, code_dirs)
    if missing is not None:
        message += "\n" + missing.message()
    frame = _where(exc, code_dirs)
    return ErrorReport(type=type(exc).__name__, message=message,
                       file=None if frame is None else frame.filename,
                       line=None if frame is None else frame.lineno, traceback=text)


def _where(exc: BaseException, code_dirs: tuple[str, ...]) -> traceback.FrameSummary | None:
    # The error's own frames first, then what it was raised from (a wrapper raised by pack).
    for error in exception_chain(exc):
        user = [f for f in traceback.extract_tb(error.__traceback__) if is_truss_code(f, code_dirs)]
        if user:
            return user[-1]
    own = traceback.extract_tb(exc.__traceback__)
    return own[-1] if own else None
