"""ChainletBase, depends(), validation at class definition, the registry and run_local.

Validation errors are collected while classes are created and raised together as one
ChainsUsageError (by the chain loader, at run_local entry, or before codegen); each line names the
file and line of the offending code (chains-compat §5). Errors never raised are printed at exit.
"""

from __future__ import annotations

import abc
import atexit
import collections.abc
import contextlib
import dataclasses
import enum
import inspect
import logging
import os
import sys
import threading
import types
import typing
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional, TypeVar, Union, cast

import pydantic

from .errors import ChainsRuntimeError, ChainsUsageError
from .public_types import (
    DISPLAY_NAME_RE,
    DeployedServiceDescriptor,
    DeploymentContext,
    RemoteConfig,
    RPCOptions,
)

log = logging.getLogger("chains")

ENDPOINT_NAME = "run_remote"
CONTEXT_ARG_NAME = "context"
_SIMPLE_TYPES = (int, float, complex, bool, str, bytes, type(None))
_STREAM_ORIGINS = (collections.abc.AsyncIterator, collections.abc.AsyncGenerator,
                   collections.abc.Iterator, collections.abc.Generator)
SPEC_HEADER = "The user defined code does not comply with the required spec, please fix below:"


# --- errors, collected ---------------------------------------------------------------------------
class ErrorKind(str, enum.Enum):
    TYPE_ERROR = "TYPE_ERROR"
    IO_TYPE_ERROR = "IO_TYPE_ERROR"
    MISSING_API_ERROR = "MISSING_API_ERROR"
    INVALID_CONFIG_ERROR = "INVALID_CONFIG_ERROR"


@dataclasses.dataclass(frozen=True)
class ValidationError:
    file: str
    line: Optional[int]
    location: str  # "Class" or "Class.method"
    kind: ErrorKind
    message: str

    def format(self) -> str:
        return f"{self.file}:{self.line or 0} ({self.location}) [kind: {self.kind.value}]: {self.message}"


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
            raise ChainsUsageError("\n".join([SPEC_HEADER] + [e.format() for e in errors]))

    def _report_at_exit(self) -> None:
        errors = self.take()
        if errors:
            sys.stderr.write("\n".join([SPEC_HEADER] + [e.format() for e in errors]) + "\n")


errors = _Collector()


def raise_validation_errors() -> None:
    """Raise every collected validation error as one ChainsUsageError."""
    errors.raise_if_errors()


# --- markers -------------------------------------------------------------------------------------
class _Marker:
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise ChainsRuntimeError(
            f"`{self!r}` is a placeholder: it is only valid as the default of a chainlet's "
            f"`__init__` parameter and is replaced by the real object when the chainlet is created "
            f"(by run_local or in the deployed chainlet). Accessing `.{name}` on it means the "
            "chainlet was instantiated by hand.")


class DependencyMarker(_Marker):
    def __init__(self, chainlet_cls: Any, options: RPCOptions):
        self.chainlet_cls = chainlet_cls
        self.options = options

    def __repr__(self) -> str:
        return f"depends({getattr(self.chainlet_cls, '__name__', self.chainlet_cls)!r})"


class ContextMarker(_Marker):
    def __repr__(self) -> str:
        return "depends_context()"


T = TypeVar("T")


def depends(chainlet_cls: type[T], retries: int = 1, timeout_sec: float = 600.0,
            use_binary: bool = False, concurrency_limit: int = 300) -> T:
    """Declare a dependency: use only as the default of a chainlet `__init__` parameter.

    `retries` is the number of retries after the first attempt, for transport failures and
    429/502/503/504 answers only (Truss counts attempts and retries every error).
    """
    options = RPCOptions(retries=retries, timeout_sec=timeout_sec, use_binary=use_binary,
                         concurrency_limit=concurrency_limit)
    return cast(T, DependencyMarker(chainlet_cls, options))


def depends_context() -> DeploymentContext:
    """Declare the deployment context: only as the default of the `context` parameter."""
    return cast(DeploymentContext, ContextMarker())


# --- descriptors ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class InputArg:
    name: str
    annotation: Any
    has_default: bool
    default: Any = None


@dataclasses.dataclass(frozen=True)
class EndpointAPI:
    name: str
    input_args: tuple[InputArg, ...]
    output_types: tuple[Any, ...]  # one entry, or several for a tuple return
    is_tuple_output: bool
    is_async: bool
    is_streaming: bool
    streaming_type: Any = None  # str or bytes


@dataclasses.dataclass(frozen=True)
class DependencyDescriptor:
    arg_name: str
    chainlet_cls: type
    options: RPCOptions


@dataclasses.dataclass(frozen=True)
class ChainletDescriptor:
    chainlet_cls: type
    src_file: str
    line: int
    endpoint: EndpointAPI
    dependencies: tuple[DependencyDescriptor, ...]
    has_context: bool
    health_check_is_async: Optional[bool]

    @property
    def name(self) -> str:
        return self.chainlet_cls.__name__

    @property
    def display_name(self) -> str:
        return self.chainlet_cls.remote_config.name or self.name  # type: ignore[attr-defined]


class _Registry:
    def __init__(self) -> None:
        self.by_name: dict[str, type] = {}
        self.descriptors: dict[type, ChainletDescriptor] = {}

    def register(self, cls: type, descriptor: Optional[ChainletDescriptor], file: str, line: int) -> None:
        existing = self.by_name.get(cls.__name__)
        if existing is not None and existing is not cls and (
                existing.__module__, existing.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ChainsUsageError(
                f"{file}:{line}: a chainlet named `{cls.__name__}` is already defined "
                f"({inspect.getsourcefile(existing) or existing.__module__}); chainlet class names "
                "must be unique: rename one of them")
        if existing is not None and existing is not cls:
            self.descriptors.pop(existing, None)  # the same file loaded again
        self.by_name[cls.__name__] = cls
        if descriptor is not None:
            self.descriptors[cls] = descriptor

    def descriptor(self, cls: type) -> ChainletDescriptor:
        try:
            return self.descriptors[cls]
        except KeyError:
            raise ChainsUsageError(f"`{cls.__name__}` is not a valid chainlet (see the validation "
                                   "errors above)") from None

    def reachable(self, entrypoint: type) -> list[ChainletDescriptor]:
        """The entrypoint and everything it depends on, dependencies before their users."""
        ordered: list[ChainletDescriptor] = []
        seen: set[type] = set()

        def visit(cls: type) -> None:
            if cls in seen:
                return
            seen.add(cls)
            descriptor = self.descriptor(cls)
            for dep in descriptor.dependencies:
                visit(dep.chainlet_cls)
            ordered.append(descriptor)

        visit(entrypoint)
        return ordered


registry = _Registry()


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
    def __init__(self, cls: type, file: str, line: int):
        self.cls = cls
        self.file = file
        self.line = line
        self.ok = True

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
                       ENDPOINT_NAME, fn)
            return False

        if isinstance(annotation, str):
            return fail("string annotations cannot be resolved (remove `from __future__ import "
                        "annotations` from the chain file)")
        if self._atom_ok(annotation):
            return True
        origin = typing.get_origin(annotation)
        if origin in (Union, types.UnionType):
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

    # --- run_remote ------------------------------------------------------------------------------
    def endpoint(self) -> Optional[EndpointAPI]:
        fn = getattr(self.cls, ENDPOINT_NAME, None)
        if fn is None:
            self.error(ErrorKind.MISSING_API_ERROR, "CHAINLETs must have a `run_remote` method.")
            return None
        if not inspect.isfunction(fn):
            self.error(ErrorKind.TYPE_ERROR, f"`{ENDPOINT_NAME}` must be a method (a function "
                       f"defined with `def` in the class body), got {type(fn).__name__}")
            return None
        signature = inspect.signature(fn)
        params = list(signature.parameters.values())
        if not params or params[0].name != "self":
            self.error(ErrorKind.TYPE_ERROR, f"the first parameter of `{ENDPOINT_NAME}` must be "
                       "`self` (no staticmethods/classmethods)", ENDPOINT_NAME, fn)
            return None
        is_async = inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
        is_generator = inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn)
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = dict(fn.__annotations__)
        args: list[InputArg] = []
        ok = True
        for param in params[1:]:
            if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                self.error(ErrorKind.TYPE_ERROR, f"parameter `{param.name}`: *args, **kwargs and "
                           "positional-only parameters are not supported", ENDPOINT_NAME, fn)
                ok = False
                continue
            if param.name not in hints:
                self.error(ErrorKind.IO_TYPE_ERROR, f"parameter `{param.name}` has no type "
                           "annotation; every parameter of run_remote must be annotated",
                           ENDPOINT_NAME, fn)
                ok = False
                continue
            ann = hints[param.name]
            ok = self.check_io_type(ann, f"parameter `{param.name}`", fn, allow_tuple=False) and ok
            has_default = param.default is not param.empty
            args.append(InputArg(param.name, ann, has_default, param.default if has_default else None))
        if "return" not in hints:
            self.error(ErrorKind.IO_TYPE_ERROR, "the return type is not annotated; annotate it "
                       "(`-> None` if nothing is returned)", ENDPOINT_NAME, fn)
            return None
        ret = hints["return"]
        origin = typing.get_origin(ret)
        is_streaming = isinstance(origin, type) and issubclass(origin, _STREAM_ORIGINS) if origin else False
        streaming_type = None
        if is_streaming or is_generator:
            if not is_generator:
                self.error(ErrorKind.IO_TYPE_ERROR, "the return type is an iterator but run_remote "
                           "does not `yield`", ENDPOINT_NAME, fn)
                return None
            if not is_streaming:
                self.error(ErrorKind.IO_TYPE_ERROR, "run_remote yields, so its return type must be "
                           "`AsyncIterator[str]` or `AsyncIterator[bytes]`", ENDPOINT_NAME, fn)
                return None
            if not is_async:
                self.error(ErrorKind.IO_TYPE_ERROR, "a streaming run_remote must be `async def`",
                           ENDPOINT_NAME, fn)
                return None
            item = (typing.get_args(ret) or (None,))[0]
            if item not in (str, bytes):
                self.error(ErrorKind.IO_TYPE_ERROR, f"streamed items must be `str` or `bytes`, got "
                           f"`{_type_text(item)}` (send structured items with the `chains.streaming` "
                           "module)", ENDPOINT_NAME, fn)
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
        if not is_async:
            warnings.warn(f"{_code_location(fn)[0]}:{_code_location(fn)[1]}: `{self.cls.__name__}."
                          f"{ENDPOINT_NAME}` is synchronous; prefer `async def` (a sync endpoint runs "
                          "in a thread and its stubs block)", DeprecationWarning, stacklevel=4)
        return EndpointAPI(ENDPOINT_NAME, tuple(args), outputs, is_tuple, is_async, is_streaming,
                           streaming_type)

    # --- __init__ --------------------------------------------------------------------------------
    def init(self) -> tuple[tuple[DependencyDescriptor, ...], bool]:
        init = self.cls.__init__  # type: ignore[misc]
        if init in (object.__init__, ChainletBase.__init__):
            return (), False
        try:
            params = list(inspect.signature(init).parameters.values())[1:]
        except (TypeError, ValueError):
            return (), False
        try:
            hints = typing.get_type_hints(init)
        except Exception:
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
            if not (isinstance(dep_cls, type) and issubclass(dep_cls, ChainletBase)) or dep_cls is ChainletBase:
                self.error(ErrorKind.TYPE_ERROR, f"`depends()` of `{param.name}` takes a chainlet "
                           f"class (a subclass of ChainletBase), got {dep_cls!r}", "__init__", init)
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
        if name is not None and not DISPLAY_NAME_RE.match(name):
            self.error(ErrorKind.INVALID_CONFIG_ERROR, f"`remote_config.name` {name!r} must match "
                       f"{DISPLAY_NAME_RE.pattern}")
        transport = remote_config.options.transport
        if transport is not None and transport.kind != "http":
            self.error(ErrorKind.INVALID_CONFIG_ERROR, f"transport `{transport.kind}` is not "
                       "supported by pack's chainlets (run_remote is an HTTP endpoint)")

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


# --- local runs ----------------------------------------------------------------------------------
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


# --- the base class --------------------------------------------------------------------------------
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
    frame = sys._getframe(2)
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == os.path.dirname(__file__):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "<unknown>", 0
    return os.path.abspath(frame.f_code.co_filename), frame.f_lineno


def _class_statement_location() -> tuple[str, int]:
    """File and line of the `class` statement being executed (skipping the metaclass frames)."""
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename in ("<frozen abc>", abc.__file__, __file__)):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "<unknown>", 0
    return os.path.abspath(frame.f_code.co_filename), frame.f_lineno


class ChainletBase(metaclass=_ChainletMeta):
    """Base class of chainlets: one `run_remote` endpoint, dependencies as `__init__` defaults."""

    remote_config: ClassVar[RemoteConfig] = RemoteConfig()
    name: ClassVar[str]
    display_name: ClassVar[str]
    _chains_entrypoint: ClassVar[bool] = False
    _chains_chain_name: ClassVar[Optional[str]] = None
    _chains_unsupported: ClassVar[Optional[str]] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        file, line = _class_statement_location()
        cls.name = cls.__name__
        remote_config = cls.__dict__.get("remote_config", getattr(cls, "remote_config", None))
        cls.display_name = (remote_config.name if isinstance(remote_config, RemoteConfig)
                            and remote_config.name else cls.__name__)
        cls._chains_entrypoint = False  # never inherited from a marked base
        validator = _Validator(cls, file, line)
        unsupported = next((b._chains_unsupported_base for b in cls.__mro__[1:]
                            if "_chains_unsupported_base" in b.__dict__), None)
        if unsupported:
            validator.error(ErrorKind.INVALID_CONFIG_ERROR, unsupported)
            registry.register(cls, None, file, line)
            return
        validator.config()
        endpoint = validator.endpoint()
        deps, has_context = validator.init()
        health = validator.health_check()
        descriptor = None
        if validator.ok and endpoint is not None:
            descriptor = ChainletDescriptor(cls, file, line, endpoint, deps, has_context, health)
        registry.register(cls, descriptor, file, line)

    async def run_remote_async(self, *args: Any, **kwargs: Any) -> Any:
        """`run_remote` for async callers, never blocking their event loop (pack; chains-compat
        §11 defect 10): a sync run_remote runs in a worker thread. The deployed stubs of a sync
        dependency offer the same method over the async HTTP client."""
        fn = getattr(self, ENDPOINT_NAME)
        if inspect.isasyncgenfunction(fn):
            raise TypeError(f"`{type(self).__name__}.run_remote` streams: iterate "
                            "`run_remote(...)` with `async for` instead")
        if inspect.iscoroutinefunction(fn):
            return await fn(*args, **kwargs)
        import asyncio

        return await asyncio.to_thread(fn, *args, **kwargs)


class EngineBuilderLLMChainlet(ChainletBase):
    """Not supported by pack: the TensorRT-LLM engine builder is a Baseten platform build."""

    _chains_unsupported_base = ("EngineBuilderLLMChainlet is not supported by pack (the TensorRT-LLM "
                                "engine builder is a Baseten platform build); deploy it with Truss")

    async def run_remote(self) -> None:  # pragma: no cover - never instantiated
        raise NotImplementedError


class TrussChainlet(ChainletBase):
    """Not supported by pack yet: wrap the existing truss as its own chainlet instead."""

    _chains_unsupported_base = ("TrussChainlet is not supported by pack yet; call the deployed "
                                "truss with `chains.StubBase.from_url(...)` instead")

    async def run_remote(self) -> None:  # pragma: no cover
        raise NotImplementedError


class ModelBase(ChainletBase):
    """Not supported by pack yet (plain-model DX): write a ChainletBase with `run_remote`."""

    _chains_unsupported_base = ("ModelBase is not supported by pack yet: subclass ChainletBase "
                                "and name the endpoint `run_remote`")

    async def run_remote(self) -> None:  # pragma: no cover
        raise NotImplementedError


# The base classes themselves are not chainlets.
for _base in (EngineBuilderLLMChainlet, TrussChainlet, ModelBase):
    registry.by_name.pop(_base.__name__, None)
    registry.descriptors.pop(_base, None)
del _base
_IGNORED_ERRORS = [e for e in errors.take()]  # the unsupported bases flagged themselves


# --- entrypoints ---------------------------------------------------------------------------------
C = TypeVar("C", bound=type)


def mark_entrypoint(cls_or_chain_name: Any = None) -> Any:
    """Class decorator: `@mark_entrypoint` or `@mark_entrypoint("Chain Name")`."""

    def mark(cls: type, chain_name: Optional[str]) -> type:
        if not (isinstance(cls, type) and issubclass(cls, ChainletBase)):
            raise ChainsUsageError(f"@mark_entrypoint applies to chainlet classes, got {cls!r}")
        cls._chains_entrypoint = True
        cls._chains_chain_name = chain_name
        return cls

    if isinstance(cls_or_chain_name, type):
        return mark(cls_or_chain_name, None)
    name = cls_or_chain_name

    def decorator(cls: type) -> type:
        return mark(cls, name)

    return decorator


def chainlets_in_module(module: types.ModuleType) -> list[type]:
    """Chainlet classes defined in `module` (not imported into it), in definition order."""
    found = []
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, ChainletBase)
                and value.__module__ == module.__name__ and value in registry.descriptors):
            found.append(value)
    return found


def find_entrypoint(module: types.ModuleType, name: Optional[str] = None) -> type:
    if name:
        cls = getattr(module, name, None)
        if not (isinstance(cls, type) and issubclass(cls, ChainletBase)):
            raise ValueError(f"{module.__file__} has no chainlet class named `{name}`")
        return cls
    chainlets = chainlets_in_module(module)
    marked = [c for c in chainlets if c.__dict__.get("_chains_entrypoint")]
    if len(marked) == 1:
        return marked[0]
    if len(marked) > 1:
        raise ValueError(f"{module.__file__}: several chainlets are marked as entrypoint "
                         f"({', '.join(c.__name__ for c in marked)}); mark exactly one, or pass "
                         "the entrypoint's class name")
    if len(chainlets) == 1:
        return chainlets[0]
    raise ValueError(f"{module.__file__}: no chainlet is marked with `@chains.mark_entrypoint` "
                     f"(found {', '.join(c.__name__ for c in chainlets) or 'none'}); mark one, or "
                     "pass the entrypoint's class name")


def chain_name(entrypoint: type, override: Optional[str] = None) -> str:
    return override or entrypoint.__dict__.get("_chains_chain_name") or entrypoint.display_name  # type: ignore[attr-defined]


AnyCallable = Callable[..., Any]
