"""The session of one dependency: calls to one service over HTTP, with its RPCOptions.

Semantics (pack; chains-compat §10 and §11 defects 1, 3, 11):
* `retries` = retries after the first attempt; only transport failures (connect errors, resets,
  a timeout before any response byte) and 429/502/503/504 answers are retried, with exponential
  backoff and jitter. A response carrying a remote error is never retried, nor a certificate
  that fails TLS verification (TLSVerificationError).
* remote errors are re-raised with the remote traceback (remote_errors.make_remote_exception).
* `timeout_sec` bounds a whole unary call; a stream gets it for the response headers and as the
  idle limit between chunks.
* a semaphore of `concurrency_limit` per dependency; a stream holds its permit until consumed or
  closed.
* streams between pack chainlets are framed (one ITEM frame per yielded item) so boundaries and
  multi-byte characters survive; `predict_async_stream` gives raw bytes for any other server.
* defect 10: a sync call never needs to run on an event loop: every generated stub of a sync
  dependency also has `async def run_remote_async` (the async client), and a sync call made on
  an event loop's thread logs, once per dependency, where it happened and what to write instead.

The clients (http_client.py) keep connections alive, pooled per dependency: aiohttp for async
calls (per event loop), http.client for sync calls. A pooled connection the server has closed is
replaced before the request goes out; one that breaks after it is a transport failure as above.
"""

from __future__ import annotations

import asyncio
import contextvars
import http.client
import json
import logging
import os
import random
import ssl
import sys
import threading
import time
import types
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Optional

import pydantic

from packager.runtime.serving import tracing

from . import streaming
from .errors import GenericRemoteException, RemoteErrorDetail
from .http_client import SyncPool, TLSVerificationError, _Target, _Transient
from .public_types import DeployedServiceDescriptor, RPCOptions
from .remote_errors import make_remote_exception

if TYPE_CHECKING:
    from .async_http import AsyncClient, AsyncResponse

# Still "chains.rpc": the name users and tests filter retry and event-loop warnings by.
log = logging.getLogger("chains.rpc")
RETRY_STATUSES = frozenset({429, 502, 503, 504})
FORWARDED_HEADERS = ("traceparent", "x-baseten-request-id", "x-baseten-chain-request-id")
BACKOFF_BASE_ENV = "PACK_CHAINS_RETRY_BACKOFF_SECONDS"  # first delay; doubles per retry
BACKOFF_CAP_SECONDS = 10.0
JSON = "application/json"
BINARY = "application/octet-stream"

# Headers of the request being served, forwarded on every call made while serving it.
inbound_headers: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "chains_inbound_headers", default=types.MappingProxyType({}))


def _backoff(retry: int) -> float:
    try:
        base = float(os.environ.get(BACKOFF_BASE_ENV, "") or 0.25)
    except ValueError:
        base = 0.25
    delay = min(BACKOFF_CAP_SECONDS, base * (2.0 ** retry))
    return delay * random.uniform(0.5, 1.0)


class RemoteSession:
    """Calls to one service with its RPCOptions (used by StubBase)."""

    def __init__(self, service: DeployedServiceDescriptor, api_key: Optional[str]):
        self.service = service
        self.options: RPCOptions = service.options
        self._host: Optional[str] = None  # the Host header, when it is not the URL's host
        if service.internal_url is not None:
            self._target = _Target.parse(service.internal_url.gateway_run_remote_url)
            self._host = service.internal_url.hostname
        else:
            assert service.predict_url is not None
            self._target = _Target.parse(service.predict_url)
        self._sync_pool = SyncPool(self._target)
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient] = \
            weakref.WeakKeyDictionary()
        self._api_key = api_key
        self._async_permits: dict[int, asyncio.Semaphore] = {}
        self._sync_permits = threading.BoundedSemaphore(self.options.concurrency_limit)
        self._warned_on_loop = False
        self.ongoing = 0
        self.queued = 0
        self.total = 0

    @property
    def name(self) -> str:
        return self.service.name

    # --- request pieces --------------------------------------------------------------------------
    def _headers(self, binary: bool, framed: bool = False) -> dict[str, str]:
        """Every header of a call: the one place they are made (both clients send these)."""
        headers = {"Content-Type": BINARY if binary else JSON, "Accept": BINARY if binary else JSON}
        if self._host:
            headers["Host"] = self._host
        if framed:
            headers["Accept"] = BINARY
            headers[streaming.FRAMED_STREAM_HEADER] = streaming.FRAMED_STREAM_VALUE
        if self._api_key:
            headers["Authorization"] = f"Api-Key {self._api_key}"
        for name in FORWARDED_HEADERS:
            value = inbound_headers.get().get(name)
            if value:
                headers[name] = value
        # While the runtime traces this request (enable_tracing_data), the call is a child of the
        # span of the method making it, not a sibling under the caller's traceparent.
        traceparent = tracing.current_traceparent()
        if traceparent:
            headers["traceparent"] = traceparent
        return headers

    def _encode(self, inputs: Any, binary: bool) -> bytes:
        if binary:
            from packager.runtime.serving import serialization

            value = inputs.model_dump(mode="python", exclude_unset=True) if isinstance(
                inputs, pydantic.BaseModel) else inputs
            return serialization.to_msgpack(value)
        if isinstance(inputs, pydantic.BaseModel):
            return inputs.model_dump_json(exclude_unset=True).encode()
        return json.dumps(inputs).encode()

    @staticmethod
    def _decode(body: bytes, binary: bool) -> Any:
        if binary:
            from packager.runtime.serving import serialization

            return serialization.parse_msgpack(body)
        return json.loads(body) if body else None

    def _trace_id(self) -> str:
        return inbound_headers.get().get("traceparent") or "-"

    def _failure(self, status: int, body: bytes) -> Exception:
        """The exception for a >= 400 answer: _Transient when worth retrying."""
        error: Any = None
        try:
            error = json.loads(body).get("error") if body else None
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, dict):
            try:
                detail = RemoteErrorDetail.model_validate(error)
            except pydantic.ValidationError:
                detail = None
            if detail is not None:  # the remote code raised: never retried
                return make_remote_exception(detail, self.name, status, self._trace_id())
        text = error if isinstance(error, str) else body[:2000].decode("utf-8", "replace")
        message = f"Chainlet `{self.name}` answered HTTP {status}: {text}"
        if status in RETRY_STATUSES:
            return _Transient(message)
        if error is None and status >= 500:
            return ValueError(message)
        return GenericRemoteException(message)

    def _timeout_error(self) -> TimeoutError:
        return TimeoutError(f"Timeout calling remote Chainlet `{self.name}` "
                            f"({self.options.timeout_sec} seconds limit).")

    def _permits(self) -> asyncio.Semaphore:
        loop_id = id(asyncio.get_running_loop())
        permits = self._async_permits.get(loop_id)
        if permits is None:
            permits = self._async_permits[loop_id] = asyncio.Semaphore(self.options.concurrency_limit)
        return permits

    def _async_http(self) -> AsyncClient:
        """The pooled client of the running event loop (a pool's connections belong to one loop)."""
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            try:
                from .async_http import AsyncClient
            except ImportError as exc:
                raise ImportError(
                    f"async chain calls need aiohttp ({exc}); pack installs it into the images of "
                    "chainlets that have dependencies or use chains.StubBase: add `aiohttp` to the "
                    "chainlet's pip_requirements if it calls other services another way") from exc
            client = self._async_clients[loop] = AsyncClient(self._target, self.options.concurrency_limit)
        return client

    # --- async unary -----------------------------------------------------------------------------
    async def call_async(self, inputs: Any, binary: Optional[bool] = None) -> Any:
        binary = self.options.use_binary if binary is None else binary
        body = self._encode(inputs, binary)
        permits = self._permits()
        self.queued += 1
        async with permits:
            self.queued -= 1
            self.ongoing += 1
            self.total += 1
            try:
                return await self._with_retries_async(lambda: self._attempt_async(body, binary))
            finally:
                self.ongoing -= 1

    async def _with_retries_async(self, attempt: Any) -> Any:
        for retry in range(self.options.retries + 1):
            try:
                return await attempt()
            except _Transient as exc:
                await asyncio.sleep(self._retry_delay(retry, exc))
        raise AssertionError("unreachable")

    def _retry_delay(self, retry: int, exc: Exception) -> float:
        """The wait before retry number `retry` + 1, or ConnectionError when none is left."""
        if retry == self.options.retries:
            raise ConnectionError(f"calling Chainlet `{self.name}` failed after "
                                  f"{retry + 1} attempt(s): {exc}") from None
        delay = _backoff(retry)
        log.warning("calling Chainlet `%s` failed (%s); retry %d of %d in %.2f s",
                    self.name, exc, retry + 1, self.options.retries, delay)
        return delay

    async def _attempt_async(self, body: bytes, binary: bool) -> Any:
        headers = self._headers(binary)
        deadline = time.monotonic() + self.options.timeout_sec
        try:
            response = await asyncio.wait_for(self._async_http().open(headers, body),
                                              self.options.timeout_sec)
        except asyncio.TimeoutError:
            raise _Transient(f"no response within {self.options.timeout_sec} s") from None
        try:
            remaining = max(0.001, deadline - time.monotonic())
            try:
                data = await asyncio.wait_for(response.read(), remaining)
            except asyncio.TimeoutError:
                raise self._timeout_error() from None
            except (OSError, asyncio.IncompleteReadError) as exc:
                raise ConnectionError(f"Chainlet `{self.name}`: the response broke off: {exc}") from exc
        finally:
            response.close()
        if response.status >= 400:
            raise self._failure(response.status, data)
        return self._decode(data, binary)

    # --- async streams ---------------------------------------------------------------------------
    async def _open_stream(self, body: bytes, binary: bool, framed: bool) -> AsyncResponse:
        async def attempt() -> AsyncResponse:
            try:
                response = await asyncio.wait_for(
                    self._async_http().open(self._headers(binary, framed), body),
                    self.options.timeout_sec)
            except asyncio.TimeoutError:
                raise _Transient(f"no response within {self.options.timeout_sec} s") from None
            if response.status >= 400:
                try:
                    data = await asyncio.wait_for(response.read(), self.options.timeout_sec)
                except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError):
                    data = b""
                finally:
                    response.close()
                raise self._failure(response.status, data)
            return response

        result: AsyncResponse = await self._with_retries_async(attempt)
        return result

    async def _chunks_with_idle_timeout(self, response: AsyncResponse) -> AsyncIterator[bytes]:
        iterator = response.chunks().__aiter__()
        while True:
            try:
                chunk = await asyncio.wait_for(iterator.__anext__(), self.options.timeout_sec)
            except StopAsyncIteration:
                return
            except asyncio.TimeoutError:
                raise self._timeout_error() from None
            except (OSError, asyncio.IncompleteReadError) as exc:
                raise ConnectionError(f"Chainlet `{self.name}`: the stream broke off: {exc}") from exc
            yield chunk

    async def stream_items(self, inputs: Any, item_type: type) -> AsyncIterator[Any]:
        """Items of a framed stream, exactly as the remote run_remote yielded them."""
        body = self._encode(inputs, self.options.use_binary)
        permits = self._permits()
        await permits.acquire()
        self.ongoing += 1
        self.total += 1
        response: Optional[AsyncResponse] = None
        try:
            response = await self._open_stream(body, self.options.use_binary, framed=True)
            decoder = streaming.FrameDecoder()
            chunks = self._chunks_with_idle_timeout(response)
            start = streaming.START_FRAME
            head = b""
            async for chunk in chunks:
                head += chunk
                if len(head) >= len(start) or not start.startswith(head):
                    break
            if not head.startswith(start):
                # A server that does not frame: decode incrementally; boundaries are not kept.
                import codecs

                text_decoder = codecs.getincrementaldecoder("utf-8")()
                pending = [head] if head else []
                async for chunk in _prepend(pending, chunks):
                    yield text_decoder.decode(chunk) if item_type is str else chunk
                if item_type is str and (rest := text_decoder.decode(b"", final=True)):
                    yield rest
                return
            async for chunk in _prepend([head[len(start):]], chunks):
                for tag, payload in decoder.feed(chunk):
                    if tag == streaming.Tag.ITEM:
                        yield payload.decode("utf-8") if item_type is str else payload
                    elif tag == streaming.Tag.ERROR:
                        detail = RemoteErrorDetail.model_validate_json(payload)
                        raise make_remote_exception(detail, self.name, 200, self._trace_id())
                    else:
                        raise ValueError(f"unexpected {tag.name} frame from Chainlet `{self.name}`")
            decoder.finish()
        finally:
            if response is not None:
                response.close()
            self.ongoing -= 1
            permits.release()

    async def stream_raw(self, inputs: Any) -> AsyncIterator[bytes]:
        body = self._encode(inputs, self.options.use_binary)
        permits = self._permits()
        await permits.acquire()
        response: Optional[AsyncResponse] = None
        try:
            response = await self._open_stream(body, self.options.use_binary, framed=False)
            async for chunk in self._chunks_with_idle_timeout(response):
                yield chunk
        finally:
            if response is not None:
                response.close()
            permits.release()

    # --- sync unary ------------------------------------------------------------------------------
    def call_sync(self, inputs: Any, binary: Optional[bool] = None) -> Any:
        self._warn_if_on_event_loop()
        binary = self.options.use_binary if binary is None else binary
        body = self._encode(inputs, binary)
        with self._sync_permits:
            for retry in range(self.options.retries + 1):
                try:
                    return self._attempt_sync(body, binary)
                except _Transient as exc:
                    time.sleep(self._retry_delay(retry, exc))
        raise AssertionError("unreachable")

    def _warn_if_on_event_loop(self) -> None:
        """A sync call made on a thread that runs an event loop (an async run_remote calling a
        sync dependency's stub) stalls that loop, and every request it serves, for the whole
        call (chains-compat §11 defect 10): say so once per dependency, naming the caller."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._warned_on_loop:
            return
        self._warned_on_loop = True
        try:
            frame = sys._getframe(3)  # call_sync <- the stub's run_remote (or predict_sync) <- caller
            where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        except ValueError:
            where = "<unknown>"
        log.warning("%s: the sync call of Chainlet `%s` runs on the event loop's thread and blocks "
                    "it (and every other request) until it returns; from async code write "
                    "`await <dependency>.run_remote_async(...)`", where, self.name)

    def _attempt_sync(self, body: bytes, binary: bool) -> Any:
        headers = self._headers(binary)
        with self._sync_pool.connection(self.options.timeout_sec) as conn:
            try:
                conn.request("POST", self._target.path, body=body, headers=headers)
                response = conn.getresponse()
            except TimeoutError:
                raise _Transient(f"no response within {self.options.timeout_sec} s") from None
            except ssl.SSLCertVerificationError as exc:
                raise TLSVerificationError(self._target, exc) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise _Transient(f"{type(exc).__name__}: {exc}") from exc
            try:
                data = response.read()
            except TimeoutError:
                raise self._timeout_error() from None
            except (OSError, http.client.HTTPException) as exc:
                raise ConnectionError(f"Chainlet `{self.name}`: the response broke off: {exc}") from exc
        if response.status >= 400:
            raise self._failure(response.status, data)
        return self._decode(data, binary)


async def _prepend(first: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in first:
        if chunk:
            yield chunk
    async for chunk in rest:
        yield chunk

