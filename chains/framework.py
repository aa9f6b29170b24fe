"""ChainletBase and ModelBase (validated and registered at class definition), the unsupported
Truss base classes, and finding a chain file's entrypoint or a model file's model.

Validation lives in validation.py, the descriptors and registry in descriptors.py, `depends()` in
markers.py and run_local (with the metaclass that guards instantiation) in local_run.py.
"""

from __future__ import annotations

import abc
import inspect
import logging
import os
import sys
import types
from typing import Any, Callable, ClassVar, Optional, TypeVar, Union, overload

from .descriptors import ENDPOINT_NAME, ChainletClass, ChainletDescriptor, registry
from .errors import ChainsUsageError, ErrorKind
from .local_run import _ChainletMeta
from .public_types import RemoteConfig
from .validation import _Validator, errors, raise_validation_errors

log = logging.getLogger("chains")


def _class_statement_location() -> tuple[str, int]:
    """File and line of the `class` statement being executed (skipping the metaclass frames)."""
    frame: Optional[types.FrameType] = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename in ("<frozen abc>", abc.__file__, __file__)):
        frame = frame.f_back
    if frame is None:
        return "<unknown>", 0
    return os.path.abspath(frame.f_code.co_filename), frame.f_lineno


class ChainletBase(metaclass=_ChainletMeta):
    """Base class of chainlets: one `run_remote` endpoint, dependencies as `__init__` defaults."""

    remote_config: ClassVar[RemoteConfig] = RemoteConfig()
    name: ClassVar[str]
    display_name: ClassVar[str]
    _chains_entity: ClassVar[str] = "CHAINLET"  # or "MODEL" (Truss's entity types)
    _chains_endpoint_name: ClassVar[str] = ENDPOINT_NAME
    _chains_entrypoint: ClassVar[bool] = False
    _chains_chain_name: ClassVar[Optional[str]] = None
    # Set by a base class pack does not support: the error its subclasses get.
    _chains_unsupported_base: ClassVar[Optional[str]] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        file, line = _class_statement_location()
        cls.name = cls.__name__
        remote_config = cls.__dict__.get("remote_config", getattr(cls, "remote_config", None))
        cls.display_name = (remote_config.name if isinstance(remote_config, RemoteConfig)
                            and remote_config.name else cls.__name__)
        # Never inherited from a marked base; a model is always its own entrypoint (as in Truss).
        cls._chains_entrypoint = cls._chains_entity == "MODEL"
        validator = _Validator(cls, file, line, ChainletBase)
        unsupported: Optional[str] = next((b.__dict__["_chains_unsupported_base"] for b in cls.__mro__[1:]
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
    """A standalone model (Truss's python-config DX, `truss init --python-config`): one `predict`
    endpoint served at Truss's model route, config from `remote_config`, no dependencies (only
    an optional `context=chains.depends_context()`). `pack check|build|run|push my_model.py`
    turns the file into a truss (packager/chains_codegen/model_source.py)."""

    _chains_entity = "MODEL"
    _chains_endpoint_name = "predict"


# The base classes themselves are not chainlets.
for _base in (EngineBuilderLLMChainlet, TrussChainlet, ModelBase):
    registry.by_name.pop(_base.__name__, None)
    registry.descriptors.pop(_base, None)
del _base
_IGNORED_ERRORS = [e for e in errors.take()]  # the unsupported bases flagged themselves


# --- entrypoints ---------------------------------------------------------------------------------
C = TypeVar("C", bound="type[ChainletBase]")


@overload
def mark_entrypoint(cls_or_chain_name: C) -> C: ...


@overload
def mark_entrypoint(cls_or_chain_name: Optional[str] = None) -> Callable[[C], C]: ...


def mark_entrypoint(cls_or_chain_name: Union[C, str, None] = None) -> Union[C, Callable[[C], C]]:
    """Class decorator: `@mark_entrypoint` or `@mark_entrypoint("Chain Name")`."""

    def mark(cls: C, chain_name: Optional[str]) -> C:
        # Checked at run time too: chain files are not type-checked.
        if not (isinstance(cls, type) and issubclass(cls, ChainletBase)):
            raise ChainsUsageError(f"@mark_entrypoint applies to chainlet classes, got {cls!r}")
        cls._chains_entrypoint = True
        cls._chains_chain_name = chain_name
        return cls

    if isinstance(cls_or_chain_name, type):
        return mark(cls_or_chain_name, None)
    name = cls_or_chain_name

    def decorator(cls: C) -> C:
        return mark(cls, name)

    return decorator


def chainlets_in_module(module: types.ModuleType) -> list[type[ChainletBase]]:
    """Chainlet classes defined in `module` (not imported into it), in definition order."""
    found: list[type[ChainletBase]] = []
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, ChainletBase)
                and value.__module__ == module.__name__ and value in registry.descriptors):
            found.append(value)
    return found


def find_entrypoint(module: types.ModuleType, name: Optional[str] = None) -> type[ChainletBase]:
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


def find_model(module: types.ModuleType) -> type[ModelBase]:
    """The one ModelBase subclass a model file defines (as Truss's ModelImporter finds it)."""
    models = [c for c in chainlets_in_module(module) if issubclass(c, ModelBase)]
    if len(models) == 1:
        return models[0]
    if not models:
        raise ValueError(f"{module.__file__}: no class inherits from `chains.ModelBase` (or "
                         "`truss_chains.ModelBase`); define one with a `predict` method")
    raise ValueError(f"{module.__file__}: several classes inherit from ModelBase "
                     f"({', '.join(c.__name__ for c in models)}), but a model file holds exactly "
                     "one; move the others to their own files")


def chain_name(entrypoint: type[ChainletClass], override: Optional[str] = None) -> str:
    marked: Optional[str] = entrypoint.__dict__.get("_chains_chain_name")
    return override or marked or entrypoint.display_name


AnyCallable = Callable[..., Any]


# raise_validation_errors is re-exported: codegen (packager/chains_codegen) and the tests import
# it from here, as from before validation moved to its own module.
__all__ = ["AnyCallable", "ChainletBase", "ChainletDescriptor", "EngineBuilderLLMChainlet",
           "ModelBase", "TrussChainlet", "chain_name", "chainlets_in_module", "errors",
           "find_entrypoint", "find_model", "mark_entrypoint", "raise_validation_errors", "registry"]
