"""run_local(strict=True): dependency calls round-trip through the deployed chain's I/O models
and stream framing, so local tests reveal what would only fail remotely."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Optional

import pydantic

from . import streaming

if TYPE_CHECKING:
    from .descriptors import ChainletDescriptor


def io_models(descriptor: ChainletDescriptor) -> tuple[type[pydantic.BaseModel], Optional[pydantic.TypeAdapter[Any]]]:
    """The request model of the endpoint and the validator of its result: the generated
    `<Name>Output` is `pydantic.RootModel[T]`, which validates and serialises as TypeAdapter(T)."""
    endpoint = descriptor.endpoint
    fields: dict[str, Any] = {}
    for arg in endpoint.input_args:
        fields[arg.name] = (arg.annotation, arg.default) if arg.has_default else (arg.annotation, ...)
    input_model = pydantic.create_model(f"{descriptor.name}Input", **fields)
    output_adapter = None
    if not endpoint.is_streaming:
        output_adapter = pydantic.TypeAdapter[Any](endpoint.output_types[0])
    return input_model, output_adapter


class StrictProxy:
    def __init__(self, instance: Any, descriptor: ChainletDescriptor):
        self._instance = instance
        self._descriptor = descriptor
        self._input_model, self._output_adapter = io_models(descriptor)

    def __getattr__(self, name: str) -> Any:
        if name == "run_remote_async":  # the strict endpoint, awaitable (a sync one in a thread)
            strict_endpoint = self.__getattr__(self._descriptor.endpoint.name)
            is_async = self._descriptor.endpoint.is_async

            async def run_remote_async(*args: Any, **kwargs: Any) -> Any:
                if is_async:
                    return await strict_endpoint(*args, **kwargs)
                return await asyncio.to_thread(strict_endpoint, *args, **kwargs)

            return run_remote_async
        attr = getattr(self._instance, name)
        if name != self._descriptor.endpoint.name:
            return attr
        endpoint = self._descriptor.endpoint
        target = attr

        def roundtrip_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            names = [a.name for a in endpoint.input_args]
            given = dict(zip(names, args))
            given.update(kwargs)
            sent = self._input_model.model_validate(given).model_dump_json(exclude_unset=True)
            received = self._input_model.model_validate_json(sent)
            return {k: getattr(received, k) for k in received.model_fields_set}

        def roundtrip_output(value: Any) -> Any:
            adapter = self._output_adapter
            assert adapter is not None
            return adapter.validate_json(adapter.dump_json(adapter.validate_python(value)))

        if endpoint.is_streaming:
            async def stream(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                decoder = streaming.FrameDecoder()
                async for item in target(**roundtrip_inputs(args, kwargs)):
                    wire = streaming.frame(streaming.Tag.ITEM, streaming.encode_item(item))
                    for _, payload in decoder.feed(wire):
                        yield payload.decode("utf-8") if endpoint.streaming_type is str else payload

            return stream
        if endpoint.is_async:
            @functools.wraps(target)
            async def call_async(*args: Any, **kwargs: Any) -> Any:
                return roundtrip_output(await target(**roundtrip_inputs(args, kwargs)))

            return call_async

        @functools.wraps(target)
        def call(*args: Any, **kwargs: Any) -> Any:
            return roundtrip_output(target(**roundtrip_inputs(args, kwargs)))

        return call
