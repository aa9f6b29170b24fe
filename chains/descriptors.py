"""What validation learned about each chainlet class (its endpoint and dependencies), and the
registry of them that run_local, codegen and the loader walk as the chain's dependency graph."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, ClassVar, Optional, Protocol

from .errors import ChainsUsageError
from .public_types import RemoteConfig, RPCOptions

ENDPOINT_NAME = "run_remote"
CONTEXT_ARG_NAME = "context"


class ChainletClass(Protocol):
    """What a chainlet class (a subclass of framework.ChainletBase) offers the code that walks the
    chain. A protocol: framework.py defines ChainletBase and imports this module."""

    remote_config: ClassVar[RemoteConfig]
    display_name: ClassVar[str]


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
    is_websocket: bool = False  # takes one WebSocketProtocol, served at /v1/websocket


@dataclasses.dataclass(frozen=True)
class DependencyDescriptor:
    arg_name: str
    chainlet_cls: type[ChainletClass]
    options: RPCOptions


@dataclasses.dataclass(frozen=True)
class ChainletDescriptor:
    chainlet_cls: type[ChainletClass]
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
        return self.chainlet_cls.remote_config.name or self.name


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
