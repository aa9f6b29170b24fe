"""The base of generated stubs (StubBase, factory): calling other chainlets and deployed models.

The calls themselves (retries, timeouts, concurrency, streams) are remote_session.RemoteSession.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Optional, TypeVar, Union, overload

import pydantic

from .errors import MissingDependencyError
from .public_types import DeployedServiceDescriptor, DeploymentContext, RPCOptions
from .remote_session import RemoteSession, inbound_headers

OutputT = TypeVar("OutputT", bound=pydantic.BaseModel)


class StubBase:
    """Base of generated stubs; also a client for any deployed Truss model (`from_url`)."""

    def __init__(self, service_descriptor: DeployedServiceDescriptor, api_key: Optional[str]):
        self._remote = RemoteSession(service_descriptor, api_key)

    @classmethod
    def from_url(cls, predict_url: str, context_or_api_key: Union[DeploymentContext, str, None],
                 options: Optional[RPCOptions] = None) -> StubBase:
        if isinstance(context_or_api_key, DeploymentContext):
            api_key = _api_key_or_none(context_or_api_key)
        else:
            api_key = context_or_api_key
        descriptor = DeployedServiceDescriptor(name=cls.__name__, display_name=cls.__name__,
                                               options=options or RPCOptions(), predict_url=predict_url)
        return cls(descriptor, api_key)

    @overload
    def predict_sync(self, inputs: Any, output_model: type[OutputT]) -> OutputT: ...

    @overload
    def predict_sync(self, inputs: Any, output_model: None = None) -> Any: ...

    def predict_sync(self, inputs: Any, output_model: Optional[type[OutputT]] = None) -> Any:
        """Blocks its thread: from async code use predict_async."""
        value = self._remote.call_sync(inputs)
        return output_model.model_validate(value) if output_model is not None else value

    @overload
    async def predict_async(self, inputs: Any, output_model: type[OutputT]) -> OutputT: ...

    @overload
    async def predict_async(self, inputs: Any, output_model: None = None) -> Any: ...

    async def predict_async(self, inputs: Any, output_model: Optional[type[OutputT]] = None) -> Any:
        value = await self._remote.call_async(inputs)
        return output_model.model_validate(value) if output_model is not None else value

    def predict_async_stream(self, inputs: Any) -> AsyncIterator[bytes]:
        return self._remote.stream_raw(inputs)

    def predict_async_stream_items(self, inputs: Any, item_type: type) -> AsyncIterator[Any]:
        return self._remote.stream_items(inputs, item_type)


def _api_key_or_none(context: DeploymentContext) -> Optional[str]:
    try:
        return context.get_baseten_api_key()
    except MissingDependencyError:
        return None


S = TypeVar("S", bound=StubBase)


def factory(stub_cls: type[S], context: DeploymentContext, name: Optional[str] = None) -> S:
    """The stub of dependency `name` (default: the stub's class name) from the context."""
    descriptor = context.get_service_descriptor(name or stub_cls.__name__)
    return stub_cls(descriptor, _api_key_or_none(context))


# RemoteSession and inbound_headers are re-exported: they were imported from here before the
# session moved to remote_session.py (the tests still do).
__all__ = ["OutputT", "RemoteSession", "S", "StubBase", "factory", "inbound_headers"]
