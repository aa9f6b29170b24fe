"""Validation of a chainlet class at definition, and the collector of its errors.

Errors are collected while classes are created and raised together as one ChainsUsageError (by
the chain loader, at run_local entry, or before codegen) rather than at the first bad class, so a
chain file shows all its problems at once; each line names the file and line of the offending
code (chains-compat §5). Errors never raised are printed at exit.
"""

from __future__ import annotations

import atexit
import collections.abc
import inspect
import os
import sys
import threading
import types
import typing
import warnings
from typing import Any, Optional, Union

import pydantic

from .descriptors import (
    CONTEXT_ARG_NAME,
    ENDPOINT_NAME,
    ChainletClass,
    DependencyDescriptor,
    EndpointAPI,
    InputArg,
    registry,
)
from .errors import ChainsUsageError, ErrorKind, ValidationError
from .markers import ContextMarker, DependencyMarker
from .public_types import DISPLAY_NAME_RE, DeploymentContext, RemoteConfig, WebSocketProtocol, WebsocketOptions

_SIMPLE_TYPES = (int, float, complex, bool, str, bytes, type(None))
_STREAM_ORIGINS = (collections.abc.AsyncIterator, collections.abc.AsyncGenerator,
                   collections.abc.Iterator, collections.abc.Generator)
# `int | None` is a types.UnionType (Python 3.10+); the image's Python may be 3.9.
_UNION_ORIGINS: tuple[Any, ...] = (Union, types.UnionType) if sys.version_info >= (3, 10) else (Union,)
SPEC_HEADER = "The user defined code does not comply with the required spec, please fix below:"


# --- errors, collected ---------------------------------------------------------------------------
class _Collector:
    def __init__(self) -> None:
        self._errors: list[ValidationError] = []
        self._lock = threading.Lock()
        atexit.register(self._report_at_exit)

    def add(self, error: ValidationError) -> None:
        with self._lock:
            self._errors.append(error)

    @property
    def pending(self) -> list[ValidationError]:
        with self._lock:
            return list(self._errors)

    def take(self) -> list[ValidationError]:
        with self._lock:
            errors, self._errors = self._errors, []
        return errors

    def raise_if_errors(self) -> None:
        errors = self.take()
        if errors:
            exc = ChainsUsageError("\n".join([SPEC_HEADER] + [e.format() for e in errors]))
            exc.validation_errors = tuple(errors)
            raise exc

    def _report_at_exit(self) -> None:
        errors = self.take()
        if errors:
            sys.stderr.write("\n".join([SPEC_HEADER] + [e.format() for e in errors]) + "\n")


errors = _Collector()


def raise_validation_errors() -> None:
    """Raise every collected validation error as one ChainsUsageError."""
    errors.raise_if_errors()


# --- validation ----------------------------------------------------------------------------------
def _code_location(obj: Any) -> tuple[str, Optional[int]]:
    code = getattr(obj, "__code__", None)
    if code is not None:
        return os.path.abspath(code.co_filename), code.co_firstlineno
    try:
        return os.path.abspath(inspect.getsourcefile(obj) or "<unknown>"), inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return "<unknown>", None


class _Validator:
    def __init__(self, cls: type[ChainletClass], file: str, line: int, base: type[ChainletClass]):
        """`base` is ChainletBase: given by framework.py, which defines it and imports this module."""
        self.cls = cls
        self.base = base
        self.file = file
        self.line = line
        self.ok = True
        # `run_remote` for chainlets, `predict` for ModelBase models (Truss's two entity kinds).
        self.endpoint_name: str = getattr(cls, "_chains_endpoint_name", ENDPOINT_NAME)
        self.entity: str = getattr(cls, "_chains_entity", "CHAINLET")

    def error(self, kind: ErrorKind, message: str, method: Optional[str] = None,
              obj: Any = None) -> None:
        self.ok = False
        file, line = (self.file, self.line) if obj is None else _code_location(obj)
        location = self.cls.__name__ + (f".{method}" if method else "")
        errors.add(ValidationError(file, line, location, kind, message))

    # --- I/O types -------------------------------------------------------------------------------
    def _atom_ok(self, annotation: Any) -> bool:
        if annotation is None or annotation in _SIMPLE_TYPES:
            return True
        return isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)

    def check_io_type(self, annotation: Any, what: str, fn: Any, allow_tuple: bool) -> bool:
        def fail(reason: str) -> bool:
            self.error(ErrorKind.IO_TYPE_ERROR,
                       f"{what}: unsupported type `{_type_text(annotation)}`: {reason}. Supported: "
                       "int, float, complex, bool, str, bytes, None, pydantic models, and "
                       "`list[...]`/`dict[...]` of those (`tuple[...]` as return only).",
                       self.endpoint_name, fn)
            return False

        if isinstance(annotation, str):
            return fail("string annotations cannot be resolved (remove `from __future__ import "
                        "annotations` from the chain file)")
        if self._atom_ok(annotation):
            return True
        origin = typing.get_origin(annotation)
        if origin in _UNION_ORIGINS:
            return fail("Optional/Union are not supported")
        if not isinstance(annotation, types.GenericAlias):
            if origin is not None:
                return fail("use the builtin generics (`list[int]`), not `typing.List`")
            return fail("not a supported type")
        args = typing.get_args(annotation)
        if origin is tuple and not allow_tuple:
            return fail("`tuple` is only supported as the return type")
        if origin not in (list, dict, tuple):
            return fail(f"container `{getattr(origin, '__name__', origin)}` is not supported")
        for arg in args:
            if arg is Ellipsis and origin is tuple:
                continue
            if origin is tuple and isinstance(arg, types.GenericAlias) and typing.get_origin(arg) in (list, dict):
                if all(self._atom_ok(a) for a in typing.get_args(arg)):
                    continue
            if not self._atom_ok(arg):
                return fail("nested containers are not supported (wrap them in a pydantic model)")
        return True

    # --- the endpoint: run_remote (chainlets) or predict (models) ---------------------------------
    def endpoint(self) -> Optional[EndpointAPI]:
        endpoint = self.endpoint_name
        fn = getattr(self.cls, endpoint, None)
        if fn is None:
            self.error(ErrorKind.MISSING_API_ERROR, f"{self.entity}s must have a `{endpoint}` method.")
            return None
        if not inspect.isfunction(fn):
            self.error(ErrorKind.TYPE_ERROR, f"`{endpoint}` must be a method (a function "
                       f"defined with `def` in the class body), got {type(fn).__name__}")
            return None
        signature = inspect.signature(fn)
        params = list(signature.parameters.values())
        if not params or params[0].name != "self":
            self.error(ErrorKind.TYPE_ERROR, f"the first parameter of `{endpoint}` must be "
                       "`self` (no staticmethods/classmethods)", endpoint, fn)
            return None
        is_async = inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
        is_generator = inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn)
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # noqa: BLE001 - evaluates the chain file's annotations: they may raise anything
            hints = dict(fn.__annotations__)
        if hints.get("return") is WebSocketProtocol:
            self.error(ErrorKind.IO_TYPE_ERROR, "Websockets cannot be used as output type.", endpoint, fn)
            return None
        if any(hints.get(p.name) is WebSocketProtocol for p in params[1:]):
            return self._websocket_endpoint(fn, params[1:], hints, is_async, is_generator)
        args: list[InputArg] = []
        ok = True
        for param in params[1:]:
            if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                self.error(ErrorKind.TYPE_ERROR, f"parameter `{param.name}`: *args, **kwargs and "
                           "positional-only parameters are not supported", endpoint, fn)
                ok = False
                continue
            if param.name not in hints:
                self.error(ErrorKind.IO_TYPE_ERROR, f"parameter `{param.name}` has no type "
                           f"annotation; every parameter of {endpoint} must be annotated",
                           endpoint, fn)
                ok = False
                continue
            ann = hints[param.name]
            ok = self.check_io_type(ann, f"parameter `{param.name}`", fn, allow_tuple=False) and ok
            has_default = param.default is not param.empty
            args.append(InputArg(param.name, ann, has_default, param.default if has_default else None))
        if "return" not in hints:
            self.error(ErrorKind.IO_TYPE_ERROR, "the return type is not annotated; annotate it "
                       "(`-> None` if nothing is returned)", endpoint, fn)
            return None
        ret = hints["return"]
        origin = typing.get_origin(ret)
        is_streaming = isinstance(origin, type) and issubclass(origin, _STREAM_ORIGINS) if origin else False
        streaming_type = None
        if is_streaming or is_generator:
            if not is_generator:
                self.error(ErrorKind.IO_TYPE_ERROR, f"the return type is an iterator but {endpoint} "
                           "does not `yield`", endpoint, fn)
                return None
            if not is_streaming:
                self.error(ErrorKind.IO_TYPE_ERROR, f"{endpoint} yields, so its return type must be "
                           "`AsyncIterator[str]` or `AsyncIterator[bytes]`", endpoint, fn)
                return None
            if not is_async:
                self.error(ErrorKind.IO_TYPE_ERROR, f"a streaming {endpoint} must be `async def`",
                           endpoint, fn)
                return None
            item = (typing.get_args(ret) or (None,))[0]
            if item not in (str, bytes):
                self.error(ErrorKind.IO_TYPE_ERROR, f"streamed items must be `str` or `bytes`, got "
                           f"`{_type_text(item)}` (send structured items with the `chains.streaming` "
                           "module)", endpoint, fn)
                return None
            streaming_type = item
            outputs: tuple[Any, ...] = (item,)
            is_tuple = False
        else:
            if not self.check_io_type(ret, "return type", fn, allow_tuple=True):
                return None
            is_tuple = typing.get_origin(ret) is tuple
            outputs = (ret,)
        if not ok:
            return None
        if not is_async and self.entity != "MODEL":  # a sync `predict` is Truss's own template
            warnings.warn(f"{_code_location(fn)[0]}:{_code_location(fn)[1]}: `{self.cls.__name__}."
                          f"{endpoint}` is synchronous; prefer `async def` (a sync endpoint runs "
                          "in a thread and its stubs block)", DeprecationWarning, stacklevel=4)
        return EndpointAPI(endpoint, tuple(args), outputs, is_tuple, is_async, is_streaming,
                           streaming_type)

    def _websocket_endpoint(self, fn: Any, params: list[inspect.Parameter], hints: dict[str, Any],
                            is_async: bool, is_generator: bool) -> Optional[EndpointAPI]:
        """truss_chains' rules for an endpoint taking a WebSocketProtocol: it is the only
        argument, the endpoint is `async`, returns None and does not yield."""
        endpoint, ok = self.endpoint_name, True
        if len(params) > 1:
            self.error(ErrorKind.IO_TYPE_ERROR, "When using a websocket as input, no other arguments "
                       "are allowed.", endpoint, fn)
            ok = False
        if hints.get("return", inspect.Parameter.empty) not in (None, type(None)):
            self.error(ErrorKind.IO_TYPE_ERROR, "Websocket endpoints must have `None` as return type.",
                       endpoint, fn)
            ok = False
        if is_generator:
            self.error(ErrorKind.IO_TYPE_ERROR, "Websocket endpoints cannot return iterators: send "
                       "through the websocket itself instead of yielding.", endpoint, fn)
            ok = False
        elif not is_async:
            self.error(ErrorKind.IO_TYPE_ERROR, "Websocket endpoints must be async.", endpoint, fn)
            ok = False
        if not ok:
            return None
        arg = InputArg(params[0].name, WebSocketProtocol, False)
        return EndpointAPI(endpoint, (arg,), (None,), False, True, False, is_websocket=True)

    # --- __init__ --------------------------------------------------------------------------------
    def init(self) -> tuple[tuple[DependencyDescriptor, ...], bool]:
        init = self.cls.__init__
        if init in (object.__init__, self.base.__init__):
            return (), False
        try:
            params = list(inspect.signature(init).parameters.values())[1:]
        except (TypeError, ValueError):
            return (), False
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # noqa: BLE001 - evaluates the chain file's annotations: they may raise anything
            hints = dict(getattr(init, "__annotations__", {}))
        deps: list[DependencyDescriptor] = []
        seen: dict[type, str] = {}
        has_context = False
        for i, param in enumerate(params):
            default = param.default
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
                self.error(ErrorKind.TYPE_ERROR, f"`__init__` parameter `{param.name}`: only "
                           "keyword parameters with a `chains.depends(...)`/`depends_context()` "
                           "default are allowed", "__init__", init)
                continue
            if param.name == CONTEXT_ARG_NAME:
                has_context = True
                if i != len(params) - 1:
                    self.error(ErrorKind.TYPE_ERROR, "`context` must be the last parameter of "
                               "`__init__`", "__init__", init)
                if not isinstance(default, ContextMarker):
                    self.error(ErrorKind.TYPE_ERROR, "`context` must default to "
                               "`chains.depends_context()`", "__init__", init)
                ann = hints.get(param.name, param.empty)
                if ann is not param.empty and not (isinstance(ann, type) and issubclass(ann, DeploymentContext)):
                    self.error(ErrorKind.TYPE_ERROR, f"`context` must be annotated "
                               f"`chains.DeploymentContext` (or not at all), got `{_type_text(ann)}`",
                               "__init__", init)
                continue
            if self.entity == "MODEL":
                self.error(ErrorKind.TYPE_ERROR, f"`__init__` parameter `{param.name}`: the only "
                           "supported argument to `__init__` for MODELs is the optional "
                           "`context=chains.depends_context()` (models take no dependencies)",
                           "__init__", init)
                continue
            if isinstance(default, ContextMarker):
                self.error(ErrorKind.TYPE_ERROR, f"`depends_context()` must be the default of the "
                           f"parameter named `context`, not `{param.name}`", "__init__", init)
                continue
            if not isinstance(default, DependencyMarker):
                self.error(ErrorKind.TYPE_ERROR, f"`__init__` parameter `{param.name}` must default "
                           "to `chains.depends(OtherChainlet)` (dependencies), or be "
                           "`context=chains.depends_context()`", "__init__", init)
                continue
            dep_cls = default.chainlet_cls
            if not (isinstance(dep_cls, type) and issubclass(dep_cls, self.base)) or dep_cls is self.base:
                self.error(ErrorKind.TYPE_ERROR, f"`depends()` of `{param.name}` takes a chainlet "
                           f"class (a subclass of ChainletBase), got {dep_cls!r}", "__init__", init)
                continue
            if getattr(dep_cls, "_chains_entity", "CHAINLET") == "MODEL":
                self.error(ErrorKind.TYPE_ERROR, f"`{param.name}`: `{dep_cls.__name__}` is a model "
                           "(ModelBase), which cannot be a dependency; make it a ChainletBase with "
                           "`run_remote`", "__init__", init)
                continue
            if dep_cls is self.cls:
                self.error(ErrorKind.TYPE_ERROR, f"`{param.name}`: a chainlet cannot depend on "
                           "itself", "__init__", init)
                continue
            if dep_cls in seen:
                self.error(ErrorKind.TYPE_ERROR, f"`{dep_cls.__name__}` is used twice as a dependency "
                           f"(`{seen[dep_cls]}` and `{param.name}`); use it once", "__init__", init)
                continue
            seen[dep_cls] = param.name
            dep = registry.descriptors.get(dep_cls)
            if dep is not None and dep.endpoint.is_websocket:
                self.error(ErrorKind.TYPE_ERROR, f"The dependency chainlet `{dep_cls.__name__}` for "
                           f"`{param.name}` uses a websocket. But websockets can only be used in the "
                           "entrypoint, not in 'inner' chainlets.", "__init__", init)
                continue
            ann = hints.get(param.name, param.empty)
            if ann is not param.empty and not _dependency_annotation_ok(ann, dep_cls):
                self.error(ErrorKind.TYPE_ERROR, f"`{param.name}` is annotated `{_type_text(ann)}`, "
                           f"but its dependency is `{dep_cls.__name__}`: annotate it with that "
                           "class, a superclass or a Protocol (or not at all)", "__init__", init)
                continue
            deps.append(DependencyDescriptor(param.name, dep_cls, default.options))
        return tuple(deps), has_context

    # --- the rest ---------------------------------------------------------------------------------
    def config(self) -> None:
        remote_config = getattr(self.cls, "remote_config", None)
        if not isinstance(remote_config, RemoteConfig):
            self.error(ErrorKind.INVALID_CONFIG_ERROR, "`remote_config` must be a "
                       f"`chains.RemoteConfig`, got {type(remote_config).__name__}")
            return
        name = remote_config.name
        # A model's name is its model_name, not a chainlet display name: any text (as in Truss).
        if name is not None and self.entity != "MODEL" and not DISPLAY_NAME_RE.match(name):
            self.error(ErrorKind.INVALID_CONFIG_ERROR, f"`remote_config.name` {name!r} must match "
                       f"{DISPLAY_NAME_RE.pattern}")
        transport = remote_config.options.transport
        websocket = _takes_websocket(getattr(self.cls, self.endpoint_name, None))
        if websocket and transport is not None and not isinstance(transport, WebsocketOptions):
            self.error(ErrorKind.INVALID_CONFIG_ERROR, "For chainlet endpoints that serve websockets, "
                       f"`options.transport` must be `WebsocketOptions`, got `{type(transport).__name__}`.")
        elif not websocket and isinstance(transport, WebsocketOptions):
            self.error(ErrorKind.INVALID_CONFIG_ERROR, "WebsocketOptions can only be used for websocket "
                       "endpoints.")
        elif transport is not None and transport.kind == "grpc":
            self.error(ErrorKind.INVALID_CONFIG_ERROR, "transport `grpc` is not supported by pack's "
                       "chainlets (run_remote is an HTTP or WebSocket endpoint)")

    def health_check(self) -> Optional[bool]:
        fn = getattr(self.cls, "is_healthy", None)
        if fn is None:
            return None
        if not inspect.isfunction(fn) or list(inspect.signature(fn).parameters) != ["self"]:
            self.error(ErrorKind.TYPE_ERROR, "`is_healthy` must be a method taking only `self` and "
                       "returning bool", "is_healthy", fn if inspect.isfunction(fn) else None)
            return None
        ret = fn.__annotations__.get("return", bool)
        if ret not in (bool, "bool"):
            self.error(ErrorKind.TYPE_ERROR, "`is_healthy` must return `bool`", "is_healthy", fn)
        return inspect.iscoroutinefunction(fn)


def _takes_websocket(fn: Any) -> bool:
    if not inspect.isfunction(fn):
        return False
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - evaluates the chain file's annotations: they may raise anything
        hints = dict(getattr(fn, "__annotations__", {}))
    return any(v is WebSocketProtocol for k, v in hints.items() if k != "return")


def _dependency_annotation_ok(annotation: Any, dep_cls: type) -> bool:
    if not isinstance(annotation, type):
        return False
    if getattr(annotation, "_is_protocol", False):
        return True
    return issubclass(dep_cls, annotation)


def _type_text(annotation: Any) -> str:
    if isinstance(annotation, type) and not isinstance(annotation, types.GenericAlias):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")
