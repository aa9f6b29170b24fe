"""Helpers the generated chainlet wrapper (model/model.py) calls inside the image.

The wrapper's order (chains-compat §8): __init__ resolves the dependency URLs (a missing one
fails the load naming the file and key) and builds the DeploymentContext; load() blocks on the
weight prefetch and only then constructs the user's chainlet with stubs injected.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Union

import pydantic

# pack's runtime serves this module (in the image, /app/packager; locally, pack itself).
from packager import constants
from packager.runtime.image_paths import RuntimePaths

from . import streaming
from .errors import MissingDependencyError
from .local_run import allow_instantiation
from .public_types import (
    DeployedServiceDescriptor,
    DeploymentContext,
    Environment,
    RPCOptions,
)
from .remote_errors import exception_to_detail, to_http_exception
from .remote_session import FORWARDED_HEADERS, inbound_headers

log = logging.getLogger("chains.glue")
DYNAMIC_CONFIG_KEY = "dynamic_chainlet_config"
DYNAMIC_CONFIG_ENV = constants.PACK_CHAINS_DYNAMIC_CONFIG  # the same JSON, set by `pack chains run`
OMITTED: Any = type("Omitted", (), {"__repr__": lambda self: "<omitted>"})()


class RequestLike(Protocol):
    """What predict's request offers (starlette's Request or the runtime's RuntimeRequest)."""

    @property
    def headers(self) -> Mapping[str, str]: ...


def dynamic_config_path() -> str:
    return os.path.join(RuntimePaths.from_env().dynamic_config_dir, DYNAMIC_CONFIG_KEY)


def _dynamic_config() -> tuple[str, Optional[dict[str, Any]]]:
    text = os.environ.get(DYNAMIC_CONFIG_ENV)
    if text:
        return f"${DYNAMIC_CONFIG_ENV}", json.loads(text)
    path = dynamic_config_path()
    try:
        with open(path, encoding="utf-8") as fh:
            return path, json.load(fh)
    except FileNotFoundError:
        return path, None


def resolve_services(chains_metadata: Mapping[str, Any]) -> dict[str, DeployedServiceDescriptor]:
    """Dependency descriptors with their URLs, from the dynamic chainlet config."""
    wanted = dict(chains_metadata.get("chainlet_to_service") or {})
    if not wanted:
        return {}
    source, config = _dynamic_config()
    if config is None:
        raise MissingDependencyError(
            f"{source} does not exist: this chainlet depends on "
            f"{', '.join(sorted(v['display_name'] for v in wanted.values()))} and learns their URLs "
            f"from that file (JSON keyed by display name: {{\"<name>\": {{\"predict_url\": ...}}}}); "
            f"`pack chains run` sets ${DYNAMIC_CONFIG_ENV} instead")
    services = {}
    for name, entry in wanted.items():
        display = entry["display_name"]
        urls = config.get(display)
        if not isinstance(urls, dict):
            raise MissingDependencyError(
                f"{source} has no key `{display}` (the URL of dependency `{name}`); keys present: "
                f"{', '.join(sorted(config)) or 'none'}")
        services[name] = DeployedServiceDescriptor(
            name=name, display_name=display, options=RPCOptions(**entry.get("options", {})),
            predict_url=urls.get("predict_url"), internal_url=urls.get("internal_url"))
    return services


def make_context(config: Mapping[str, Any], data_dir: Union[str, os.PathLike[str], None],
                 secrets: Optional[Mapping[str, str]], environment: object) -> DeploymentContext:
    metadata = (config.get("model_metadata") or {}).get("chains_metadata") or {}
    env = None
    if isinstance(environment, dict) and isinstance(environment.get("name"), str):
        env = Environment.model_validate(environment)
    return DeploymentContext(chainlet_to_service=resolve_services(metadata),
                             secrets=secrets if secrets is not None else {},
                             data_dir=Path(data_dir) if data_dir is not None else None,
                             environment=env)


def construct(chainlet_cls: Callable[..., Any], **kwargs: Any) -> Any:
    """Create the user's chainlet (allowed here, and only with keyword arguments)."""
    with allow_instantiation():
        return chainlet_cls(**kwargs)


def present_fields(inputs: pydantic.BaseModel) -> dict[str, Any]:
    """The fields the request actually carried: omitted ones get the Python default."""
    return {name: getattr(inputs, name) for name in inputs.model_fields_set}


def sent(**kwargs: Any) -> dict[str, Any]:
    """Stub arguments minus those left at a default that could not be written in the stub."""
    return {k: v for k, v in kwargs.items() if v is not OMITTED}


def default_of(fn: Callable[..., Any], name: str) -> Any:
    return inspect.signature(fn).parameters[name].default


def _headers_of(request: Optional[RequestLike]) -> dict[str, str]:
    headers = getattr(request, "headers", None) or {}
    found = {}
    for name in (*FORWARDED_HEADERS, streaming.FRAMED_STREAM_HEADER):
        value = headers.get(name)
        if value:
            found[name] = value
    return found


@contextlib.contextmanager
def serving(request: Optional[RequestLike]) -> Iterator[None]:
    """Around one run_remote call: forward trace headers to the calls it makes; turn its
    exception into the {"error": RemoteErrorDetail} answer."""
    token = inbound_headers.set(_headers_of(request))
    try:
        yield
    except Exception as exc:
        raise to_http_exception(exc) from exc
    finally:
        inbound_headers.reset(token)


def wants_frames(request: Optional[RequestLike]) -> bool:
    return _headers_of(request).get(streaming.FRAMED_STREAM_HEADER) == streaming.FRAMED_STREAM_VALUE


async def serve_stream(make_stream: Callable[[], AsyncIterator[Any]],
                       request: Optional[RequestLike]) -> AsyncIterator[bytes]:
    """A streaming run_remote's answer: one ITEM frame per item for pack chainlets (an ERROR
    frame carries a failure), the raw items for anyone else."""
    headers = _headers_of(request)
    framed = headers.get(streaming.FRAMED_STREAM_HEADER) == streaming.FRAMED_STREAM_VALUE
    token = inbound_headers.set(headers)
    try:
        if not framed:
            async for item in make_stream():
                yield streaming.encode_item(item)
            return
        yield streaming.START_FRAME
        try:
            async for item in make_stream():
                yield streaming.frame(streaming.Tag.ITEM, streaming.encode_item(item))
        except Exception as exc:
            log.error("run_remote raised %s mid-stream: %s", type(exc).__name__, exc, exc_info=exc)
            detail = exception_to_detail(exc)
            yield streaming.frame(streaming.Tag.ERROR, detail.model_dump_json().encode())
    finally:
        inbound_headers.reset(token)



# --- websocket chainlets ---------------------------------------------------------------------------
@contextlib.contextmanager
def forwarding(websocket: RequestLike) -> Iterator[None]:
    """Around a websocket run_remote: forward the connection's trace headers to the calls it
    makes. Its exceptions pass through: the server closes the connection with 1011."""
    token = inbound_headers.set(_headers_of(websocket))
    try:
        yield
    finally:
        inbound_headers.reset(token)


class WebSocketWrapper:
    """chains.WebSocketProtocol over the websocket the runtime hands the generated model
    (starlette's WebSocket, or the runtime's own without starlette), as truss_chains'
    WebsocketWrapperFastAPI: `receive` raises the disconnect error of that websocket's kind
    (fastapi.WebSocketDisconnect when starlette is there), and `iter_*` and `is_connected` are
    coroutines. Unlike truss_chains, an empty text message is returned as "" (not a KeyError)."""

    def __init__(self, websocket: Any) -> None:
        self._websocket = websocket
        self.headers: Mapping[str, str] = websocket.headers

    async def close(self, code: int = 1000, reason: Optional[str] = None) -> None:
        await self._websocket.close(code=code, reason=reason)

    async def receive(self) -> Union[str, bytes]:
        message = await self._websocket.receive()
        if message.get("type") == "websocket.disconnect":
            from packager.runtime.serving.websocket import disconnect_types

            raise disconnect_types()[-1](message["code"], message.get("reason"))
        text = message.get("text")
        return str(text) if text is not None else bytes(message["bytes"])

    async def receive_text(self) -> str:
        return str(await self._websocket.receive_text())

    async def receive_bytes(self) -> bytes:
        return bytes(await self._websocket.receive_bytes())

    async def receive_json(self) -> Any:
        return await self._websocket.receive_json()

    async def send_text(self, data: str) -> None:
        await self._websocket.send_text(data)

    async def send_bytes(self, data: bytes) -> None:
        await self._websocket.send_bytes(data)

    async def send_json(self, data: Any) -> None:
        await self._websocket.send_json(data)

    async def iter_text(self) -> AsyncIterator[str]:
        iterator: AsyncIterator[str] = self._websocket.iter_text()
        return iterator

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        iterator: AsyncIterator[bytes] = self._websocket.iter_bytes()
        return iterator

    async def iter_json(self) -> AsyncIterator[Any]:
        iterator: AsyncIterator[Any] = self._websocket.iter_json()
        return iterator

    async def is_connected(self) -> bool:
        # A heuristic, as in truss_chains: both sides still in the CONNECTED state.
        return all(getattr(getattr(self._websocket, side, None), "name", None) == "CONNECTED"
                   for side in ("application_state", "client_state"))
