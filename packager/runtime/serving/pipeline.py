"""Running model methods for one request: preprocess -> permit -> predict -> release ->
postprocess, with predict_concurrency permits around predict only (Truss's order).

Sync methods run in a 40-thread pool (Truss's anyio default) so the event loop keeps answering
probes; async methods run on the loop. A generator result becomes a ChunkStream: its own producer
(a pool thread for a sync generator, a task for an async one) runs it ahead of the client into a
bounded buffer (PACK_STREAM_BUFFER_BYTES, 4 MiB), so a slow client holds the permit only while the
buffer is full (the permit is released when the generator finishes) and a client that stops
reading costs no memory. Unlike Truss, whose queue is unbounded, a client that stops reading
keeps its permit, for PACK_STREAM_STALL_TIMEOUT (60 s) at most: then its generator is closed and
its stream aborted.

Before each method (preprocess, predict once it has its permit, postprocess) a request whose
client has disconnected is skipped (Truss answers 499 then), so a request queued behind
predict_concurrency does not run predict for nobody.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import AsyncGeneratorType, GeneratorType
from typing import TYPE_CHECKING, Any, Protocol, Union

if TYPE_CHECKING:  # TypeGuard is Python 3.10+, GeneratorType[...] 3.13+: only annotations name them
    from typing import TypeGuard

    # A generator the model returned: it yields the chunks (str or bytes, or the stream fails).
    UserStream = Union[GeneratorType[object, Any, Any], AsyncGeneratorType[object, Any]]

from packager import constants

from ..image_paths import env_float
from .http_errors import MODEL_ERROR_MESSAGE
from . import tracing
from .model_spec import MethodSpec, ModelDefinitionError, ModelSpec
from .request_metrics import TimedSemaphore

log = logging.getLogger("pack.model")
SYNC_THREADS = 40
STREAM_BUFFER_BYTES = 4 * 1024 * 1024
STREAM_STALL_SECONDS = 60.0
CHUNK_OVERHEAD = 64  # what a buffered chunk costs besides its bytes: tiny chunks are bounded too
_CHUNK, _END, _ERROR = "chunk", "end", "error"


class ModelError(Exception):
    """User code raised; the traceback is already logged, the client gets a generic 500."""


class StreamTimeout(Exception):
    """No chunk within streaming_read_timeout. Not TimeoutError: that is an OSError, which the
    server takes for the client going away."""


class ClientDisconnected(Exception):
    """The client went away before a model method ran: the method is skipped (Truss's 499)."""

    def __init__(self, step: str):
        super().__init__(f"Client disconnected, skipping `{step}`.")


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


# What the producer hands the consumer: (_CHUNK, the bytes of what the generator yielded),
# (_END, None) or (_ERROR, the exception it raised).
_Message = tuple[str, Any]


class ChunkStream:
    """The model's generator, run ahead of the client by at most `capacity` buffered bytes.

    A sync generator runs in a pool thread while the buffer has room and parks when it is full:
    its thread goes back to the pool, so a client that stops reading holds neither memory nor a
    thread; the consumer resumes it once the buffer is half empty. An async generator runs in a
    task that awaits room. `cancel()` (the client went away, the stream failed or timed out, or it
    was never sent) drops the buffer and closes the generator at once, or, while a sync generator
    is inside next(), as soon as next() returns. `on_done` runs once, on the loop, when the
    generator has finished or been closed: the predict permit is held until then.
    """

    def __init__(self, gen: UserStream, loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor,
                 read_timeout: float, on_done: Callable[[], None], capacity: int | None = None,
                 stall_timeout: float | None = None):
        self._gen: UserStream | None = gen
        self._loop = loop
        self._executor = executor
        self._timeout = read_timeout
        self._on_done: Callable[[], None] | None = on_done
        self._capacity = capacity or stream_buffer_bytes()
        self._stall_timeout = stall_timeout or env_float(constants.PACK_STREAM_STALL_TIMEOUT, STREAM_STALL_SECONDS)
        self._stall: asyncio.TimerHandle | None = None  # armed while the buffer is full
        self._lock = threading.Lock()  # guards the fields below: a sync producer is in a thread
        self._buffer: deque[_Message] = deque()
        self._buffered = 0  # what _buffer costs, in bytes
        self._waiter: asyncio.Future[None] | None = None  # the consumer, waiting for a message
        self._room: asyncio.Future[None] | None = None  # an async producer, waiting for room
        self._parked = False  # a sync producer stopped for room (no thread runs it)
        self._stopped = False
        self._task: asyncio.Task[None] | None = None
        # The request's context (its log fields, its span) for a sync generator's thread (a copy
        # each time: the thread that parked may not have left it yet); a task copies it itself.
        self._context = contextvars.copy_context()

    def start(self) -> ChunkStream:
        gen = self._gen
        if isinstance(gen, AsyncGeneratorType):
            self._task = self._loop.create_task(self._produce_async(gen))
        else:
            self._executor.submit(self._context.copy().run, self._produce_sync)
        return self

    # --- producer ------------------------------------------------------------------------------
    def _produce_sync(self) -> None:
        """In a pool thread: pull chunks until the buffer is full (park), the generator ends or
        the stream is cancelled (close the generator here, where it ran)."""
        gen = self._gen
        assert isinstance(gen, GeneratorType)
        while True:
            with self._lock:
                if self._stopped:
                    break
                if self._buffered >= self._capacity:
                    self._parked = True
                    self._loop.call_soon_threadsafe(self._arm_stall)
                    return
            message = _pull_sync(gen)
            if not self._put(message, threadsafe=True) or message[0] != _CHUNK:
                break
        self._close_sync(gen)

    def _close_sync(self, gen: GeneratorType[object, Any, Any]) -> None:
        try:
            gen.close()  # runs the generator's finally blocks; nothing when it has ended
        except Exception:
            log.exception("closing the streamed generator raised")
        try:
            self._loop.call_soon_threadsafe(self._done)
        except RuntimeError:  # the loop has closed: the server is gone
            pass

    async def _produce_async(self, gen: AsyncGeneratorType[object, Any]) -> None:
        try:
            while True:
                if self._buffered >= self._capacity:
                    self._room = self._loop.create_future()
                    self._arm_stall()
                    await self._room
                    continue
                message = await _pull_async(gen)
                if not self._put(message) or message[0] != _CHUNK:
                    break
        except asyncio.CancelledError:
            pass  # cancel(): close the generator below
        finally:
            self._room = None
            try:
                await gen.aclose()
            except Exception:
                log.exception("closing the streamed generator raised")
            self._done()

    def _put(self, message: _Message, threadsafe: bool = False) -> bool:
        """Hand a message to the consumer; False once the stream is cancelled (dropped then)."""
        with self._lock:
            stopped = self._stopped
            waiter = None
            if not stopped:
                self._buffer.append(message)
                self._buffered += _cost(message)
                waiter, self._waiter = self._waiter, None
        if stopped:
            if message[0] == _ERROR:
                log.warning("the streamed generator raised after its stream was closed: %s: %s",
                            type(message[1]).__name__, message[1])
            return False
        if waiter is not None:
            if threadsafe:
                self._loop.call_soon_threadsafe(_wake, waiter)
            else:
                _wake(waiter)
        return True

    def _done(self) -> None:
        """The generator has ended or been closed: release the permit; drop every reference."""
        on_done, self._on_done = self._on_done, None
        self._gen = self._task = None
        self._disarm_stall()
        if on_done is not None:
            on_done()

    def _arm_stall(self) -> None:
        """The buffer is full (on the loop): the client must take a chunk within the stall timeout."""
        with self._lock:
            full = self._parked or self._room is not None
        if full and self._stall is None and not self._stopped:
            self._stall = self._loop.call_later(self._stall_timeout, self._stalled)

    def _disarm_stall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _stalled(self) -> None:
        self._stall = None
        log.warning("the client read nothing of a full stream buffer for %g s "
                    "(PACK_STREAM_STALL_TIMEOUT): its generator is closed, its stream aborted",
                    self._stall_timeout)
        self.cancel()

    # --- consumer ------------------------------------------------------------------------------
    async def _next(self) -> _Message:
        waited = False
        while True:
            message: _Message | None = None
            resume, room = False, None
            with self._lock:
                if self._buffer:
                    message = self._buffer.popleft()
                    self._buffered -= _cost(message)
                    if self._buffered <= self._capacity // 2:
                        resume, self._parked = self._parked, False
                        room, self._room = self._room, None
                        if room is not None:
                            _wake(room)
                elif self._stopped:
                    raise RuntimeError("the stream was cancelled")
                elif waited:
                    raise StreamTimeout(f"the model produced no chunk for {self._timeout:g} s "
                                       "(runtime.streaming_read_timeout)")
                else:
                    waiter = self._waiter = self._loop.create_future()
            if message is not None:
                if resume or room is not None:
                    self._disarm_stall()
                if resume:
                    self._executor.submit(self._context.copy().run, self._produce_sync)
                return message
            try:
                await asyncio.wait_for(waiter, self._timeout)
            except asyncio.TimeoutError:
                waited = True  # look once more: a message may have come with the timeout
                with self._lock:
                    if self._waiter is waiter:
                        self._waiter = None

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            kind, item = await self._next()
            if kind == _END:
                return
            if kind == _ERROR:
                log.error("%s (the streamed result failed)", MODEL_ERROR_MESSAGE, exc_info=item)
                reason = f"{type(item).__name__}: {item}"
                item = None  # no frame keeps the exception (and its traceback's frames) alive
                raise ModelError(reason)
            yield item

    def cancel(self) -> None:
        """Stop producing, drop what is buffered, close the generator (on the loop; a second call,
        or one after the generator ended, does nothing more)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._buffer.clear()
            self._buffered = 0
            parked, self._parked = self._parked, False
            waiter, self._waiter = self._waiter, None
        self._disarm_stall()
        if waiter is not None:
            _wake(waiter)
        if self._task is not None:
            self._task.cancel()
        elif parked and isinstance(self._gen, GeneratorType):
            try:
                self._executor.submit(self._context.copy().run, self._close_sync, self._gen)
            except RuntimeError:  # the pool has shut down (a retired instance): close it here
                self._close_sync(self._gen)

    async def gather_text(self) -> str:
        try:
            return b"".join([chunk async for chunk in self.chunks()]).decode("utf-8")
        finally:
            self.cancel()


def stream_buffer_bytes() -> int:
    """How far a streamed generator may run ahead of its client (PACK_STREAM_BUFFER_BYTES)."""
    return max(1, int(env_float(constants.PACK_STREAM_BUFFER_BYTES, STREAM_BUFFER_BYTES)))


def _cost(message: _Message) -> int:
    return len(message[1]) + CHUNK_OVERHEAD if message[0] == _CHUNK else 0


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _pull_sync(gen: GeneratorType[object, Any, Any]) -> _Message:
    # A function of its own: the traceback of a caught exception holds this frame, which must
    # not hold the exception in turn (a reference cycle kept until a full collection).
    try:
        return _CHUNK, to_bytes(next(gen))
    except StopIteration:
        return _END, None
    except Exception as exc:  # noqa: BLE001 - delivered to the consumer
        return _ERROR, exc


async def _pull_async(gen: AsyncGeneratorType[object, Any]) -> _Message:
    try:
        return _CHUNK, to_bytes(await gen.__anext__())
    except StopAsyncIteration:
        return _END, None
    except Exception as exc:  # noqa: BLE001 - delivered to the consumer
        return _ERROR, exc


def to_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"streamed chunks must be str or bytes, got {type(chunk).__name__}")


def in_thread(loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor, context: contextvars.Context,
              fn: Callable[..., object], args: tuple[object, ...]) -> asyncio.Future[object]:
    """fn(*args) in a pool thread, run in `context`; its outcome as a future of `loop`.

    What loop.run_in_executor does, without chaining a concurrent.futures.Future to the asyncio one
    (several Python-level callbacks and two failed attribute lookups per call: a tenth of a small
    request's CPU). A call whose future was cancelled before a thread took it does not run."""
    future: asyncio.Future[object] = loop.create_future()
    executor.submit(_run_in_thread, [future], loop, context, fn, args)
    return future


def _run_in_thread(slot: list[asyncio.Future[object]], loop: asyncio.AbstractEventLoop,
                   context: contextvars.Context, fn: Callable[..., object], args: tuple[object, ...]) -> None:
    # The future comes in a list emptied here: a failing model's frames in the traceback keep
    # this frame and the pool's work item (its arguments) alive, and neither may keep the future,
    # which keeps the exception (a cycle until a full collection, the model's locals with it).
    future: asyncio.Future[object] | None = slot.pop()
    assert future is not None
    if future.cancelled():
        return
    try:
        result = context.run(fn, *args)
    except BaseException as exc:  # noqa: BLE001 - delivered to the awaiting coroutine
        loop.call_soon_threadsafe(_settle, future, None, exc)
        future = None
    else:
        loop.call_soon_threadsafe(_settle, future, result, None)


def _settle(future: asyncio.Future[object], result: object, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is None:
        future.set_result(result)
    else:
        future.set_exception(exc)


def _skip_if_gone(disconnected: Callable[[], bool], spec: MethodSpec) -> None:
    if disconnected():
        log.warning("Client disconnected, skipping `%s`.", spec.name)  # Truss's words
        raise ClientDisconnected(spec.name)


class Pipeline:
    """One loaded model instance's request path. A reload in place builds a new one and retires
    the old: requests holding the old one finish on it, and it closes when the last has ended."""

    def __init__(self, spec: ModelSpec, loop: asyncio.AbstractEventLoop, concurrency: int,
                 read_timeout: float):
        self.spec = spec
        self._loop = loop
        self._executor = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="model")
        self._permits = TimedSemaphore(concurrency)  # counts the wait for a permit (/metrics)
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

    def call(self, spec: MethodSpec, args: tuple[object, ...]) -> Awaitable[object]:
        """Call a model method, inside its span when tracing is on (tracing.py); with tracing off,
        without the span's wrapper coroutine (per-request cost)."""
        if tracing.active():
            return tracing.traced(spec.name, self._call(spec, args))
        return self._call(spec, args)

    async def _call(self, spec: MethodSpec, args: tuple[object, ...]) -> object:
        """Call a model method; user exceptions are logged and re-raised as ModelError."""
        try:
            if spec.is_coroutine:
                return await spec.fn(*args)
            if spec.is_async_gen:
                return spec.fn(*args)
            # In the request's context (log request id, trace context), as Truss's to_thread runs it.
            return await in_thread(self._loop, self._executor, contextvars.copy_context(), spec.fn, args)
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

    async def predict(self, inputs: object, request: object,
                      disconnected: Callable[[], bool] = lambda: False) -> Value | ChunkStream | UserResponse:
        """`disconnected` says whether the client has gone (checked before each method)."""
        spec = self.spec
        if spec.predict is None:  # a websocket model: the routes answer 404 before this
            raise ModelDefinitionError("the model has no `predict`: it serves WebSocket connections")
        if spec.preprocess is not None:
            _skip_if_gone(disconnected, spec.preprocess)
            inputs = await self.call(spec.preprocess, spec.preprocess.args(inputs, request))
        if not self._permits.take():
            await self._permits.acquire()
        handed_over = False
        try:
            _skip_if_gone(disconnected, spec.predict)  # it may have waited long for its permit
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
                # Not waiting for the first chunk: the status and headers go out at once.
                return ChunkStream(result, self._loop, self._executor, self._read_timeout,
                                   self._permits.release).start()
        finally:
            if not handed_over:
                self._permits.release()
        if spec.postprocess is not None:
            _skip_if_gone(disconnected, spec.postprocess)
            result = await self.call(spec.postprocess, spec.postprocess.args(result, request))
        return Value(result)

    async def unlimited(self, spec: MethodSpec, inputs: object, request: object,
                        disconnected: Callable[[], bool] = lambda: False) -> Value | ChunkStream | UserResponse:
        """The OpenAI-style routes: the same-named method, outside predict_concurrency."""
        _skip_if_gone(disconnected, spec)
        result = await self.call(spec, spec.args(inputs, request))
        if is_response(result):
            return UserResponse(result, lambda: None)
        if is_stream(result):
            return ChunkStream(result, self._loop, self._executor, self._read_timeout, lambda: None).start()
        return Value(result)

    def close(self) -> None:
        self._executor.shutdown(wait=False)
