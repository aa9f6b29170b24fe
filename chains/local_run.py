"""run_local and the rule it enforces: a chainlet is only instantiated inside `run_local()`
(dependencies injected) or by the generated wrapper, never by hand or from another chainlet.

The metaclass lives here, not with ChainletBase, because every instantiation goes through it and
its only job is to consult this module's per-thread state.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import os
import sys
import threading
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Optional, Union

from .descriptors import CONTEXT_ARG_NAME, registry
from .errors import ChainsRuntimeError
from .public_types import DeployedServiceDescriptor, DeploymentContext
from .validation import raise_validation_errors


@dataclasses.dataclass
class _LocalRun:
    context: DeploymentContext
    strict: bool
    instances: dict[type, Any] = dataclasses.field(default_factory=dict)


_local = threading.local()


def _state() -> threading.local:
    if not hasattr(_local, "runs"):
        _local.runs = []
        _local.depth = 0  # chainlet __init__ calls on the stack
        _local.injecting = 0
        _local.generated = 0
    return _local


@contextlib.contextmanager
def allow_instantiation() -> Iterator[None]:
    """Used by generated chainlet code (model.py) to construct the user's chainlet."""
    state = _state()
    state.generated += 1
    try:
        yield
    finally:
        state.generated -= 1


@contextlib.contextmanager
def run_local(secrets: Optional[Mapping[str, str]] = None, data_dir: Union[Path, str, None] = None,
              chainlet_to_service: Optional[Mapping[str, DeployedServiceDescriptor]] = None,
              strict: bool = False) -> Iterator[None]:
    """Run chainlets in this process: `with chains.run_local(): Entry().run_remote(...)`.

    Dependencies are injected as one shared instance per class, the context carries `secrets`
    and `data_dir`; explicit constructor kwargs win. `strict=True` (pack only) round-trips every
    dependency call's arguments and results through the same pydantic I/O models and stream
    framing the deployed chain uses, so serialisation problems show up locally.
    """
    raise_validation_errors()
    context = DeploymentContext(chainlet_to_service=dict(chainlet_to_service or {}),
                                secrets=dict(secrets or {}),
                                data_dir=Path(data_dir) if data_dir is not None else None)
    state = _state()
    state.runs.append(_LocalRun(context, strict))
    try:
        yield
    finally:
        state.runs.pop()


def _inject(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    state = _state()
    run: _LocalRun = state.runs[-1]
    descriptor = registry.descriptor(cls)
    kwargs = dict(kwargs)
    if descriptor.has_context and CONTEXT_ARG_NAME not in kwargs:
        kwargs[CONTEXT_ARG_NAME] = run.context
    for dep in descriptor.dependencies:
        if dep.arg_name in kwargs:
            continue
        instance = run.instances.get(dep.chainlet_cls)
        if instance is None:
            state.injecting += 1
            try:
                instance = dep.chainlet_cls()
            finally:
                state.injecting -= 1
            if run.strict:
                from .strict import StrictProxy

                instance = StrictProxy(instance, registry.descriptor(dep.chainlet_cls))
            run.instances[dep.chainlet_cls] = instance
        kwargs[dep.arg_name] = instance
    return kwargs


class _ChainletMeta(abc.ABCMeta):
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise ChainsRuntimeError("Only kwargs are allowed.")
        state = _state()
        file, line = _caller_location()
        if state.generated and not state.depth:
            pass
        elif state.runs and (state.depth == 0 or state.injecting):
            kwargs = _inject(cls, kwargs)
        else:
            where = "inside another chainlet's code" if state.depth else "outside `chains.run_local()`"
            raise ChainsRuntimeError(
                f"{file}:{line}: `{cls.__name__}` was instantiated {where}. Chainlets cannot be "
                "naively instantiated: dependencies are declared with `chains.depends()` and "
                "injected; for tests use `with chains.run_local(): ...`.")
        state.depth += 1
        try:
            return super().__call__(**kwargs)
        finally:
            state.depth -= 1


def _caller_location() -> tuple[str, int]:
    frame: Optional[types.FrameType] = sys._getframe(2)
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == os.path.dirname(__file__):
        frame = frame.f_back
    if frame is None:
        return "<unknown>", 0
    return os.path.abspath(frame.f_code.co_filename), frame.f_lineno

