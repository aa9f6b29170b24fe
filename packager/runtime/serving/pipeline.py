"""Running model methods for one request: preprocess -> permit -> predict -> release ->
postprocess, with predict_concurrency permits around predict only (Truss's order).

Sync methods run in a 40-thread pool (Truss's anyio default) so the event loop keeps answering
probes; async methods run on the loop. A generator result becomes a ChunkStream, drained by its
own producer (a pool thread for a sync generator, a task for an async one) into a queue, so a
slow client does not hold the permit: the permit is released when the generator finishes.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import AsyncGeneratorType, GeneratorType
from typing import TYPE_CHECKING, Any, Protocol, Union

if TYPE_CHECKING:  # TypeGuard is Python 3.10+, GeneratorType[...] 3.13+: only annotations name them
    from typing import TypeGuard

    # A generator the model returned: it yields the chunks (str or bytes, or the stream fails).
    UserStream = Union[GeneratorType[object, Any, Any], AsyncGeneratorType[object, Any]]

from .http_errors import MODEL_ERROR_MESSAGE
from .model_spec import MethodSpec, ModelDefinitionError, ModelSpec

log = logging.getLogger("pack.model")
SYNC_THREADS = 40
_CHUNK, _END, _ERROR = "chunk", "end", "error"


class ModelError(Exception):
    """User code raised; the traceback is already logged, the client gets a generic 500."""


class HTTPExceptionLike(Protocol):
    """fastapi/starlette's HTTPException as the runtime sees it (their packages are not imported)."""

    status_code: int
    detail: object


def is_http_exception(exc: BaseException) -> TypeGuard[HTTPExceptionLike]:
    """fastapi/starlette HTTPException (or any look-alike): passed through with its status."""
    return type(exc).__name__ == "HTTPException" and hasattr(exc, "status_code") and hasattr(exc, "detail")


class ResponseLike(Protocol):
    """A starlette Response (or subclass) the model returned, read by its attributes (starlette is
    not imported): besides these, a `body` or (streaming) a `body_iterator`, maybe a `background`."""

    status_code: int
    raw_headers: list[tuple[bytes, bytes]]


def is_response(obj: object) -> TypeGuard[ResponseLike]:
    """A starlette Response (or subclass) returned by the model."""
    return (hasattr(obj, "status_code") and hasattr(obj, "raw_headers")
            and (hasattr(obj, "body") or hasattr(obj, "body_iterator")))


def is_stream(obj: object) -> TypeGuard[UserStream]:
    return isinstance(obj, (GeneratorType, AsyncGeneratorType))


@dataclass
class Value:
    result: object


@dataclass
class UserResponse:
    response: ResponseLike
    release: Callable[[], None]  # held until a streaming response is fully sent


# What the producer hands the consumer: (_CHUNK, what the generator yielded), (_END, None) or
# (_ERROR, the exception it raised).
_Message = tuple[str, Any]


class ChunkStream:
    def __init__(self, gen: UserStream, loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor,
                 read_timeout: float, on_done: Callable[[], None]):
        self._gen = gen
        self._loop = loop
        self._executor = executor
        self._timeout = read_timeout
        self._on_done = on_done
        self._queue: asyncio.Queue[_Message] = asyncio.Queue()
        self._stop = threading.Event()
        self._task: asyncio.Future[None] | None = None
        self._first: _Message | None = None

    def start(self) -> ChunkStream:
        gen = self._gen
        if isinstance(gen, AsyncGeneratorType):
            self._task = self._loop.create_task(self._drain_async(gen))
        else:
            self._task = self._loop.run_in_executor(self._executor, self._drain_sync, gen)
        return self

    async def _drain_async(self, gen: AsyncGeneratorType[object, Any]) -> None:
        try:
            async for item in gen:
                self._queue.put_nowait((_CHUNK, item))
            self._queue.put_nowait((_END, None))
        except asyncio.CancelledError:
            self._queue.put_nowait((_END, None))
        except Exception as exc:  # noqa: BLE001 - delivered to the consumer
            self._queue.put_nowait((_ERROR, exc))
        finally:
            self._on_done()

    def _drain_sync(self, gen: GeneratorType[object, Any, Any]) -> None:
        def put(message: _Message) -> None:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, message)

        try:
            for item in gen:
                put((_CHUNK, item))
                if self._stop.is_set():
                    gen.close()
                    break
            put((_END, None))
        except Exception as exc:  # noqa: BLE001 - delivered to the consumer
            put((_ERROR, exc))
        finally:
            self._loop.call_soon_threadsafe(self._on_done)

    async def _next(self) -> _Message:
        try:
            return await asyncio.wait_for(self._queue.get(), self._timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"the model produced no chunk for {self._timeout:g} s "
                               "(runtime.streaming_read_timeout)") from None

    async def first(self) -> None:
        """Wait for the first chunk, so a generator failing at once still gets a proper 500."""
        kind, item = self._first = await self._next()
        if kind == _ERROR:
            log.error("%s (in the streamed predict result)", MODEL_ERROR_MESSAGE, exc_info=item)
            raise ModelError(str(item)) from item

    async def chunks(self) -> AsyncIterator[bytes]:
        pending = self._first
        self._first = None
        while True:
            kind, item = pending if pending is not None else await self._next()
            pending = None
            if kind == _END:
                return
            if kind == _ERROR:
                log.error("%s (the model raised mid-stream)", MODEL_ERROR_MESSAGE, exc_info=item)
                raise item
            yield to_bytes(item)

    def cancel(self) -> None:
        """The client went away: stop producing (a sync generator stops at its next yield)."""
        self._stop.set()
        if self._task is not None and inspect.isasyncgen(self._gen):
            self._task.cancel()

    async def gather_text(self) -> str:
        return b"".join([chunk async for chunk in self.chunks()]).decode("utf-8")


def to_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"streamed chunks must be str or bytes, got {type(chunk).__name__}")


class Pipeline:
    """One loaded model instance's request path. A reload in place builds a new one and retires
    the old: requests holding the old one finish on it, and it closes when the last has ended."""

    def __init__(self, spec: ModelSpec, loop: asyncio.AbstractEventLoop, concurrency: int,
                 read_timeout: float):
        self.spec = spec
        self._loop = loop
        self._executor = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="model")
        self._permits = asyncio.Semaphore(concurrency)
        self._read_timeout = read_timeout
        self._held = 0
        self._retired: Callable[[], None] | None = None

    def hold(self) -> Callable[[], None]:
        """Count a request using this pipeline until the returned release is called (on the loop;
        a second call does nothing)."""
        self._held += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._held -= 1
            if self._held == 0 and self._retired is not None:
                self._close_retired()

        return release

    def retire(self, on_closed: Callable[[], None]) -> int:
        """No new requests come here; close once the requests held now have ended (`on_closed` is
        called then). Returns how many are still running."""
        self._retired = on_closed
        if self._held == 0:
            self._close_retired()
        return self._held

    def _close_retired(self) -> None:
        on_closed, self._retired = self._retired, None
        self.close()
        if on_closed is not None:
            on_closed()

    async def call(self, spec: MethodSpec, args: tuple[object, ...]) -> object:
        """Call a model method; user exceptions are logged and re-raised as ModelError."""
        try:
            if spec.is_coroutine:
                return await spec.fn(*args)
            if spec.is_async_gen:
                return spec.fn(*args)
            return await self._loop.run_in_executor(self._executor, functools.partial(spec.fn, *args))
        except Exception as exc:
            if is_http_exception(exc):
                log.warning("the model raised HTTPException(%s): %s", exc.status_code, exc.detail)
                raise
            log.error("%s (`%s` raised)", MODEL_ERROR_MESSAGE, spec.name, exc_info=exc)
            raise ModelError(str(exc)) from exc

    async def call_plain(self, fn: Callable[..., object], *args: object) -> object:
        """A method outside the request contract (is_healthy, setup_environment)."""
        if inspect.iscoroutinefunction(fn):
            return await fn(*args)
        return await self._loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def predict(self, inputs: object, request: object) -> Value | ChunkStream | UserResponse:
        spec = self.spec
        if spec.preprocess is not None:
            inputs = await self.call(spec.preprocess, spec.preprocess.args(inputs, request))
        await self._permits.acquire()
        handed_over = False
        try:
            result = await self.call(spec.predict, spec.predict.args(inputs, request))
            if (is_stream(result) or is_response(result)) and spec.postprocess is not None:
                raise ModelDefinitionError(
                    "predict returned a stream or a Response, so postprocess cannot run: move "
                    "the postprocessing into predict or return a plain value")
            if is_response(result):
                if hasattr(result, "body_iterator"):
                    handed_over = True
                    return UserResponse(result, self._permits.release)
                return UserResponse(result, lambda: None)
            if is_stream(result):
                handed_over = True  # the producer releases the permit when the generator ends
                stream = ChunkStream(result, self._loop, self._executor, self._read_timeout,
                                     self._permits.release).start()
                try:
                    await stream.first()
                except BaseException:
                    stream.cancel()
                    raise
                return stream
        finally:
            if not handed_over:
                self._permits.release()
        if spec.postprocess is not None:
            result = await self.call(spec.postprocess, spec.postprocess.args(result, request))
        return Value(result)

    async def unlimited(self, spec: MethodSpec, inputs: object, request: object) -> Value | ChunkStream | UserResponse:
        """The OpenAI-style routes: the same-named method, outside predict_concurrency."""
        result = await self.call(spec, spec.args(inputs, request))
        if is_response(result):
            return UserResponse(result, lambda: None)
        if is_stream(result):
            stream = ChunkStream(result, self._loop, self._executor, self._read_timeout, lambda: None).start()
            await stream.first()
            return stream
        return Value(result)

    def close(self) -> None:
        self._executor.shutdown(wait=False)
