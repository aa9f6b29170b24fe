"""`depends()` and `depends_context()`: the placeholders a chainlet's `__init__` defaults hold
until run_local or the deployed wrapper replaces them with the real dependency or context."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from .errors import ChainsRuntimeError
from .public_types import DeploymentContext, RPCOptions


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
