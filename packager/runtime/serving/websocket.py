"""`Model.websocket(ws)` served at Truss's route, /v1/websocket (truss-compat §2.5, §2.6).

Truss's semantics (truss_server.py `websocket`, run by uvicorn with its `websockets` protocol):
- the server accepts the connection, then awaits `model.websocket(ws)`; the model does not accept
  (a second accept raises RuntimeError, as starlette does);
- when websocket returns, the connection is closed with 1000 (a close the model made stands);
- an exception is logged with its traceback and the connection closed with 1011
  "Internal Server Error (in model/chainlet)."; a WebSocketDisconnect leaving the model (the client
  went away) is logged at info;
- a model without websocket: accepted, then closed with 1003 "WebSocket is not implemented on this
  deployment.";
- messages up to 100 MiB (Truss's WS_MAX_MSG_SZ_BYTES; a larger one fails the connection with
  1009); permessage-deflate is negotiated; a keepalive ping every
  runtime.transport.ping_interval_seconds (uvicorn's 20 s), the connection failed with 1011 when
  no pong comes within ping_timeout_seconds (20 s); on SIGTERM open sessions are closed with 1012
  (service restart), as uvicorn does at shutdown;
- WebSocket sessions are not under predict_concurrency (Truss's server applies it to predict only).
pack's own rules: until the model is loaded the upgrade is answered 503 (Truss's not-ready error;
Truss fails the handshake there); at most PACK_WS_MAX_SESSIONS sessions at once (default 1024),
past that the upgrade is answered 503 with Retry-After before any handshake; a plain GET of the
route is a 404, as under Truss.

The protocol (handshake, framing, masking, compression, control frames, the closing handshake) is
the sans-I/O core of the `websockets` package (ServerProtocol); this module only moves its bytes
and assembles messages. The build plan installs `websockets` only into images whose model defines
websocket, and it is imported here only then (prepare(), at load).

What the model gets: a real starlette.websockets.WebSocket when starlette can be imported (always
when model.py imports fastapi or starlette, as Truss models do for the annotation), built on the
ASGI websocket scope with receive/send implemented here, so every attribute and exception is
starlette's own: `except fastapi.WebSocketDisconnect` works unchanged. Without starlette it gets
RuntimeWebSocket: the same surface over the same ASGI messages, raising this module's
WebSocketDisconnect (code, reason).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import importlib
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from packager import constants

from ..image_paths import env_float
from .http_errors import DOWNSTREAM, MODEL_ERROR_MESSAGE, error_response
from .http_server import Headers, HttpRequest, HttpResponse, Response, Upgrade
from .request_adapter import asgi_scope

log = logging.getLogger("pack.websocket")
_T = TypeVar("_T")
# The protocol library's own log: "connection open/closed" for every session is noise at INFO.
_protocol_log = logging.getLogger("pack.websocket.protocol")
_protocol_log.setLevel(logging.WARNING)

ROUTE = constants.WEBSOCKET_PATH
MAX_MESSAGE_BYTES = 100 * (1 << 20)  # Truss's WS_MAX_MSG_SZ_BYTES
DEFAULT_PING_INTERVAL = 20.0  # uvicorn's ws_ping_interval / ws_ping_timeout
DEFAULT_PING_TIMEOUT = 20.0
DEFAULT_MAX_SESSIONS = 1024
CLOSE_TIMEOUT = 10.0  # how long a closing handshake may take before the socket is dropped
READ_SIZE = 1 << 16
# Received messages a session holds for a model that does not read: past either bound the socket
# is not read (the client's sends block on TCP), so memory stays within about two messages.
INBOX_MESSAGES = 16

NORMAL_CLOSURE, UNSUPPORTED_DATA, ABNORMAL_CLOSURE = 1000, 1003, 1006
INVALID_DATA, INTERNAL_ERROR, SERVICE_RESTART = 1007, 1011, 1012
NOT_IMPLEMENTED_MESSAGE = "WebSocket is not implemented on this deployment."
REQUIREMENT = "websockets>=13.0"  # what the build plan installs (ServerProtocol, sans-I/O)


class WebSocketUnavailable(ImportError):
    """The `websockets` package is missing or too old in this image."""


class ClientDisconnected(OSError):
    """ASGI send on a connection that is closing or closed (uvicorn raises an OSError too;
    starlette turns it into WebSocketDisconnect(1006))."""


class WebSocketDisconnect(Exception):
    """The client went away (starlette's WebSocketDisconnect, for models without starlette)."""

    def __init__(self, code: int = NORMAL_CLOSURE, reason: str | None = None):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason or ""


class WebSocketState(enum.Enum):
    """starlette.websockets.WebSocketState's members and values."""

    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2
    RESPONSE = 3


# --- settings --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebSocketSettings:
    max_message_bytes: int = MAX_MESSAGE_BYTES
    ping_interval: float | None = DEFAULT_PING_INTERVAL  # None or 0: no keepalive pings
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT
    max_sessions: int = DEFAULT_MAX_SESSIONS
    close_timeout: float = CLOSE_TIMEOUT

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WebSocketSettings:
        """runtime.transport's pings (as Truss passes them to uvicorn: only when set) and the
        environment's limits."""
        runtime = config.get("runtime")
        runtime = runtime if isinstance(runtime, dict) else {}
        transport = runtime.get("transport")
        transport = transport if isinstance(transport, dict) else {}

        def seconds(key: str, default: float) -> float | None:
            value = transport.get(key)
            return float(value) if isinstance(value, (int, float)) and value else default

        return cls(
            max_message_bytes=max(1, int(env_float(constants.PACK_WS_MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES))),
            ping_interval=seconds("ping_interval_seconds", DEFAULT_PING_INTERVAL),
            ping_timeout=seconds("ping_timeout_seconds", DEFAULT_PING_TIMEOUT),
            max_sessions=max(1, int(env_float(constants.PACK_WS_MAX_SESSIONS, DEFAULT_MAX_SESSIONS))),
        )


# --- the protocol library, imported once a websocket model loads ----------------------------------
@dataclass(frozen=True)
class _Library:
    version: str
    server_protocol: Any  # websockets.server.ServerProtocol
    request: Any  # websockets.http11.Request
    headers: Any  # websockets.datastructures.Headers
    opcode: Any  # websockets.frames.Opcode
    state: Any  # websockets.protocol.State
    deflate: Any  # websockets.extensions.permessage_deflate.ServerPerMessageDeflateFactory


@functools.cache
def library() -> _Library:
    try:
        import websockets
        from websockets.datastructures import Headers as WsHeaders
        from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
        from websockets.frames import Opcode
        from websockets.http11 import Request
        from websockets.protocol import State
        from websockets.server import ServerProtocol
    except ImportError as exc:
        raise WebSocketUnavailable(
            f"the model defines `websocket`, which pack serves with the `websockets` package "
            f"(sans-I/O ServerProtocol), and it cannot be imported here ({exc}); pack's build "
            f"installs it into images of websocket models: rebuild with this pack, or add "
            f"`{REQUIREMENT}` to requirements (a pin older than 13.0 lacks what pack uses)") from exc
    return _Library(str(getattr(websockets, "__version__", "?")), ServerProtocol, Request, WsHeaders,
                    Opcode, State, ServerPerMessageDeflateFactory)


@functools.cache
def _starlette() -> Any:
    """starlette.websockets when importable, else None."""
    try:
        return importlib.import_module("starlette.websockets")
    except Exception:  # noqa: BLE001 - any failure to import it means: serve without it
        return None


def prepare() -> None:
    """At load, for a model with websocket: import the protocol (a missing package fails the load
    with the fix) and starlette when present, so the first connection pays for neither."""
    library()
    _starlette()


def disconnect_types() -> tuple[type[BaseException], ...]:
    """The exception classes that mean 'the client went away' in the model's hands."""
    module = sys.modules.get("starlette.websockets")
    found = getattr(module, "WebSocketDisconnect", None) if module is not None else None
    return (WebSocketDisconnect, found) if isinstance(found, type) else (WebSocketDisconnect,)


def is_upgrade(req: HttpRequest) -> bool:
    connection = (req.headers.get("connection") or "").lower()
    return "upgrade" in connection and (req.headers.get("upgrade") or "").lower() == "websocket"


# --- one connection, as ASGI's websocket scope + receive + send ------------------------------------
class AsgiConnection:
    """The server side of one WebSocket connection: ASGI `receive` and `send` over the sans-I/O
    protocol, with this connection's reader and writer. Messages arrive through a reader task;
    the model's sends write directly (with flow control)."""

    def __init__(self, lib: _Library, request: HttpRequest, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, settings: WebSocketSettings):
        self._lib = lib
        self._reader, self._writer = reader, writer
        self._settings = settings
        self._protocol = lib.server_protocol(max_size=settings.max_message_bytes,
                                             extensions=[lib.deflate()], logger=_protocol_log)
        # The protocol reads the opening handshake from the stream: hand it the request the HTTP
        # server parsed (re-serialised), and answer with what its accept() makes of it.
        self._protocol.receive_data(lib.request(request.target, lib.headers(request.headers.raw)).serialize())
        parsed = [e for e in self._protocol.events_received() if isinstance(e, lib.request)]
        self.handshake: Any = self._protocol.accept(parsed[0]) if parsed else None
        protocols = [p.strip() for v in _all(request.headers, "sec-websocket-protocol") for p in v.split(",")]
        self.scope: dict[str, Any] = {**asgi_scope(request), "type": "websocket", "scheme": "ws",
                                      "subprotocols": [p for p in protocols if p]}
        self.scope.pop("method", None)
        self._connect_sent = False
        self._accepted = False
        self._close_sent = False
        self._inbox: deque[tuple[dict[str, Any], int]] = deque()  # (message, its payload's size)
        self._inbox_bytes = 0
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._disconnect: dict[str, Any] | None = None
        self._parts: list[bytes] = []
        self._text = False
        self._ping: bytes | None = None
        self._pong = asyncio.Event()
        self._drain_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._abort_handle: asyncio.TimerHandle | None = None
        self.closed = asyncio.Event()  # the reader ended: the connection is over

    # --- ASGI ------------------------------------------------------------------------------------
    async def receive(self) -> dict[str, Any]:
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        while not self._inbox:
            if self._disconnect is not None:
                return dict(self._disconnect)
            self._arrived.clear()
            await self._arrived.wait()
        message, size = self._inbox.popleft()
        self._inbox_bytes -= size
        self._room.set()
        return message

    async def send(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if not self._accepted:
            if kind == "websocket.accept":
                await self._accept(message)
                return
            if kind == "websocket.close":
                await self._deny()
                return
            raise RuntimeError(f"Expected ASGI message 'websocket.accept' or 'websocket.close', but got {kind!r}.")
        if self._close_sent:
            raise RuntimeError(f"Unexpected ASGI message {kind!r}, after sending 'websocket.close'.")
        if kind not in ("websocket.send", "websocket.close"):
            raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', but got {kind!r}.")
        is_open = self._protocol.state is self._lib.state.OPEN and not self._writer.transport.is_closing()
        if kind == "websocket.close":
            self._close_sent = True
            if not is_open:  # closing or closed already (the client left): nothing to do, as uvicorn
                return
            code = message.get("code")
            self._protocol.send_close(NORMAL_CLOSURE if code is None else int(code), message.get("reason") or "")
        elif not is_open:
            raise ClientDisconnected("the WebSocket connection is closed")
        elif message.get("bytes") is not None:
            self._protocol.send_binary(bytes(message["bytes"]))
        else:
            self._protocol.send_text(str(message.get("text") or "").encode("utf-8"))
        self._flush()
        await self._drain()

    # --- handshake -------------------------------------------------------------------------------
    async def _deny(self) -> None:
        """A close before the handshake denies it with 403, as uvicorn does."""
        self._accepted = self._close_sent = True  # nothing more may be sent
        self._protocol.send_response(self._protocol.reject(403, ""))
        self._flush()
        await self._drain()

    async def refuse_handshake(self) -> None:
        """The request is not a valid WebSocket handshake: send the protocol's 4xx answer."""
        self._accepted = self._close_sent = True
        if self.handshake is not None:  # else the protocol has queued its answer already
            self._protocol.send_response(self.handshake)
        self._flush()
        await self._drain()

    async def _accept(self, message: dict[str, Any]) -> None:
        response = self.handshake
        subprotocol = message.get("subprotocol")
        if subprotocol:
            response.headers["Sec-WebSocket-Protocol"] = str(subprotocol)
        for name, value in message.get("headers") or []:
            response.headers[_text(name)] = _text(value)
        self._accepted = True
        self._protocol.send_response(response)
        self._flush()
        self._tasks.append(asyncio.ensure_future(self._read_loop()))
        if self._settings.ping_interval:
            self._tasks.append(asyncio.ensure_future(self._keepalive()))
        await self._drain()

    # --- I/O ---------------------------------------------------------------------------------------
    def _flush(self) -> None:
        transport = self._writer.transport
        for data in self._protocol.data_to_send():
            if transport.is_closing():
                continue
            if data:
                self._writer.write(data)
            elif self._writer.can_write_eof():
                try:
                    self._writer.write_eof()
                except (OSError, RuntimeError):
                    transport.close()
            else:
                transport.close()
        if self._abort_handle is None and self._protocol.close_expected():
            # The closing handshake has a deadline: a peer that never finishes it is dropped.
            self._abort_handle = asyncio.get_running_loop().call_later(
                self._settings.close_timeout, self._writer.transport.abort)

    async def _drain(self) -> None:
        try:
            async with self._drain_lock:  # Python 3.9's StreamWriter allows one drain at a time
                await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise ClientDisconnected(f"the WebSocket connection was lost: {exc}") from None

    async def _read_loop(self) -> None:
        protocol = self._protocol
        try:
            while protocol.state is not self._lib.state.CLOSED:
                if not self._room.is_set():
                    await self._room.wait()
                try:
                    data = await self._reader.read(READ_SIZE)
                except (ConnectionError, OSError):
                    data = b""
                if data:
                    protocol.receive_data(data)
                else:
                    protocol.receive_eof()
                for event in protocol.events_received():
                    self._on_frame(event)
                self._flush()
                if not data:
                    break
        except Exception:  # noqa: BLE001 - a bug here must end this connection, not the server
            log.exception("WebSocket connection failed")
        finally:
            self._end()

    def _on_frame(self, frame: Any) -> None:
        op = self._lib.opcode
        if frame.opcode is op.TEXT or frame.opcode is op.BINARY:
            self._text, self._parts = frame.opcode is op.TEXT, [bytes(frame.data)]
        elif frame.opcode is op.CONT:
            self._parts.append(bytes(frame.data))
        elif frame.opcode is op.PONG:
            if self._ping is not None and bytes(frame.data) == self._ping:
                self._pong.set()
            return
        elif frame.opcode is op.CLOSE:  # the protocol answers it; the model learns at once
            self._set_disconnect()
            return
        else:  # PING: the protocol answers it
            return
        if not frame.fin:
            return
        payload, self._parts = b"".join(self._parts), []
        message: dict[str, Any] = {"type": "websocket.receive"}
        if self._text:
            try:
                message["text"] = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._protocol.fail(INVALID_DATA, f"invalid UTF-8 at position {exc.start}")
                self._set_disconnect()
                return
        else:
            message["bytes"] = payload
        self._inbox.append((message, len(payload)))
        self._inbox_bytes += len(payload)
        if len(self._inbox) >= INBOX_MESSAGES or self._inbox_bytes >= self._settings.max_message_bytes:
            self._room.clear()
        self._arrived.set()

    def _set_disconnect(self) -> None:
        if self._disconnect is not None:
            return
        protocol = self._protocol
        close = protocol.close_rcvd or protocol.close_sent  # what was received, else what we sent
        code, reason = (close.code, close.reason) if close is not None else (ABNORMAL_CLOSURE, "")
        self._disconnect = {"type": "websocket.disconnect", "code": int(code), "reason": reason}
        self._arrived.set()

    def _end(self) -> None:
        self._protocol.receive_eof()
        self._set_disconnect()
        self._room.set()
        if self._abort_handle is not None:
            self._abort_handle.cancel()
        self._writer.transport.close()
        self.closed.set()

    async def _keepalive(self) -> None:
        interval, timeout = self._settings.ping_interval or 0.0, self._settings.ping_timeout
        state = self._lib.state
        while True:
            await asyncio.sleep(interval)
            if self._protocol.state is not state.OPEN:
                return
            self._ping = os.urandom(4)
            self._pong.clear()
            self._protocol.send_ping(self._ping)
            self._flush()
            if not timeout:
                continue
            try:
                await asyncio.wait_for(self._pong.wait(), timeout)
            except asyncio.TimeoutError:
                if self._protocol.state is state.OPEN:
                    log.info("no pong within %g s: closing the WebSocket connection (1011)", timeout)
                    self._protocol.fail(INTERNAL_ERROR, "keepalive ping timeout")
                    self._set_disconnect()
                    self._flush()
                return

    # --- server side -------------------------------------------------------------------------------
    def close_for_shutdown(self) -> None:
        """SIGTERM: start the closing handshake with 1012 (service restart)."""
        if self._accepted and not self._close_sent and self._protocol.state is self._lib.state.OPEN:
            self._protocol.send_close(SERVICE_RESTART, "")
            self._flush()

    async def finish(self) -> None:
        """After the model: wait for the closing handshake (bounded), then drop the socket."""
        if self._tasks:
            try:
                await asyncio.wait_for(self.closed.wait(), self._settings.close_timeout)
            except asyncio.TimeoutError:
                self._writer.transport.abort()
        for task in self._tasks:
            task.cancel()
        if self._abort_handle is not None:
            self._abort_handle.cancel()
        self._writer.transport.close()


def _text(value: object) -> str:
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)


def _all(headers: Headers, name: str) -> list[str]:
    return [v for k, v in headers.raw if k.lower() == name]


# --- what the model gets without starlette ----------------------------------------------------------
class _URL:
    def __init__(self, request: HttpRequest):
        self.scheme = "ws"
        self.netloc = request.headers.get("host") or "localhost"
        self.path = request.path
        self.query = request.query

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}" + (f"?{self.query}" if self.query else "")


class _QueryParams(dict[str, str]):
    """The query as a mapping (the last value of a repeated key), with getlist() for all of them."""

    def __init__(self, query: str):
        self._pairs = parse_qsl(query, keep_blank_values=True)
        super().__init__(self._pairs)

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self._pairs if k == key]

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self._pairs)


class RuntimeWebSocket:
    """starlette.websockets.WebSocket's surface for models that run without starlette: accept,
    receive/receive_text/receive_bytes/receive_json, send/send_text/send_bytes/send_json,
    iter_text/iter_bytes/iter_json, close, client_state/application_state, headers,
    query_params, url, client, cookies, path_params, scope. The states and errors follow
    starlette's."""

    def __init__(self, connection: AsgiConnection, request: HttpRequest):
        self.scope = connection.scope
        self._receive: Callable[[], Awaitable[dict[str, Any]]] = connection.receive
        self._send: Callable[[dict[str, Any]], Awaitable[None]] = connection.send
        self.client_state = WebSocketState.CONNECTING
        self.application_state = WebSocketState.CONNECTING
        self.headers: Headers = request.headers
        self.query_params = _QueryParams(request.query)
        self.url = _URL(request)
        self.path_params: dict[str, Any] = {}
        peer = request.client
        self.client = (peer[0], peer[1]) if peer else None
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(request.headers.get("cookie") or "")
        except Exception:  # noqa: BLE001, S110 - a malformed Cookie header reads as no cookies
            pass
        self.cookies = {k: m.value for k, m in cookie.items()}

    async def receive(self) -> dict[str, Any]:
        if self.client_state == WebSocketState.CONNECTING:
            message = await self._receive()
            if message["type"] != "websocket.connect":
                raise RuntimeError(f'Expected ASGI message type "websocket.connect", but got {message["type"]!r}')
            self.client_state = WebSocketState.CONNECTED
            return message
        if self.client_state == WebSocketState.CONNECTED:
            message = await self._receive()
            if message["type"] not in ("websocket.receive", "websocket.disconnect"):
                raise RuntimeError('Expected ASGI message type "websocket.receive" or "websocket.disconnect", '
                                   f'but got {message["type"]!r}')
            if message["type"] == "websocket.disconnect":
                self.client_state = WebSocketState.DISCONNECTED
            return message
        raise RuntimeError('Cannot call "receive" once a disconnect message has been received.')

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if self.application_state == WebSocketState.CONNECTING:
            if kind not in ("websocket.accept", "websocket.close"):
                raise RuntimeError('Expected ASGI message type "websocket.accept" or "websocket.close", '
                                   f'but got {kind!r}')
            self.application_state = (WebSocketState.DISCONNECTED if kind == "websocket.close"
                                      else WebSocketState.CONNECTED)
            await self._send(message)
        elif self.application_state == WebSocketState.CONNECTED:
            if kind not in ("websocket.send", "websocket.close"):
                raise RuntimeError('Expected ASGI message type "websocket.send" or "websocket.close", '
                                   f'but got {kind!r}')
            if kind == "websocket.close":
                self.application_state = WebSocketState.DISCONNECTED
            try:
                await self._send(message)
            except OSError:
                self.application_state = WebSocketState.DISCONNECTED
                raise WebSocketDisconnect(ABNORMAL_CLOSURE) from None
        else:
            raise RuntimeError('Cannot call "send" once a close message has been sent.')

    async def accept(self, subprotocol: str | None = None,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
        if self.client_state == WebSocketState.CONNECTING:
            await self.receive()
        await self.send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": headers or []})

    @staticmethod
    def _raise_on_disconnect(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", NORMAL_CLOSURE), message.get("reason"))

    def _require_connected(self) -> None:
        if self.application_state != WebSocketState.CONNECTED:
            raise RuntimeError('WebSocket is not connected. Need to call "accept" first.')

    async def _message(self) -> dict[str, Any]:
        """The next message (after accept); the client gone raises WebSocketDisconnect."""
        self._require_connected()
        message = await self.receive()
        self._raise_on_disconnect(message)
        return message

    async def receive_text(self) -> str:
        return str((await self._message())["text"])

    async def receive_bytes(self) -> bytes:
        return bytes((await self._message())["bytes"])

    async def receive_json(self, mode: str = "text") -> Any:
        if mode not in ("text", "binary"):
            raise RuntimeError('The "mode" argument should be "text" or "binary".')
        message = await self._message()
        return json.loads(message["text"] if mode == "text" else message["bytes"].decode("utf-8"))

    @staticmethod
    async def _until_disconnect(receive: Callable[[], Awaitable[_T]]) -> AsyncIterator[_T]:
        try:
            while True:
                yield await receive()
        except WebSocketDisconnect:
            pass

    def iter_text(self) -> AsyncIterator[str]:
        return self._until_disconnect(self.receive_text)

    def iter_bytes(self) -> AsyncIterator[bytes]:
        return self._until_disconnect(self.receive_bytes)

    def iter_json(self) -> AsyncIterator[Any]:
        return self._until_disconnect(self.receive_json)

    async def send_text(self, data: str) -> None:
        await self.send({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        await self.send({"type": "websocket.send", "bytes": data})

    async def send_json(self, data: Any, mode: str = "text") -> None:
        if mode not in ("text", "binary"):
            raise RuntimeError('The "mode" argument should be "text" or "binary".')
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if mode == "text":
            await self.send({"type": "websocket.send", "text": text})
        else:
            await self.send({"type": "websocket.send", "bytes": text.encode("utf-8")})

    async def close(self, code: int = NORMAL_CLOSURE, reason: str | None = None) -> None:
        await self.send({"type": "websocket.close", "code": code, "reason": reason or ""})


def model_websocket(connection: AsgiConnection, request: HttpRequest) -> Any:
    """What `model.websocket` receives: starlette's WebSocket when importable, else RuntimeWebSocket."""
    module = _starlette()
    if module is not None:
        try:
            return module.WebSocket(connection.scope, connection.receive, connection.send)
        except Exception:  # noqa: BLE001 - an incompatible starlette: serve the subset
            log.debug("starlette's WebSocket could not be built; using the runtime's", exc_info=True)
    return RuntimeWebSocket(connection, request)


# --- the route -------------------------------------------------------------------------------------
class WebSocketSessions:
    """The open sessions of one server: the cap, and closing them all at shutdown."""

    REFUSAL_LOG_INTERVAL = 10.0

    def __init__(self) -> None:
        self._open: set[AsgiConnection] = set()
        self._refused = 0
        self._last_refusal_log = 0.0

    def __len__(self) -> int:
        return len(self._open)

    def handle(self, req: HttpRequest, websocket: Callable[[Any], Awaitable[object]] | None,
               settings: WebSocketSettings, hold: Callable[[], Callable[[], None]]) -> Response:
        """GET /v1/websocket of a loaded model (the route checked readiness): the takeover that
        runs the session, or a refusal. `websocket` is the model's method (None: not defined)."""
        if not is_upgrade(req):
            return HttpResponse(404, b'{"detail":"Not Found"}', content_type="application/json")
        try:
            lib = library()
        except WebSocketUnavailable as exc:  # a predict model's image: nothing speaks WebSocket here
            log.warning("%s", exc)
            return error_response(404, NOT_IMPLEMENTED_MESSAGE, DOWNSTREAM)
        if len(self._open) >= settings.max_sessions:
            self._log_refusal(settings.max_sessions)
            response = error_response(503, f"too many WebSocket sessions (at most {settings.max_sessions} "
                                           f"at once; {constants.PACK_WS_MAX_SESSIONS})", DOWNSTREAM)
            response.headers.append(("Retry-After", "1"))
            return response

        async def takeover(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._session(lib, req, reader, writer, websocket, settings, hold)

        return Upgrade(takeover)

    def close_all(self) -> int:
        """SIGTERM: every open session gets a 1012 close; returns how many were open."""
        for connection in list(self._open):
            connection.close_for_shutdown()
        return len(self._open)

    def _log_refusal(self, cap: int) -> None:
        self._refused += 1
        now = time.monotonic()
        if now - self._last_refusal_log >= self.REFUSAL_LOG_INTERVAL:
            log.warning("refused %d WebSocket session(s): %d are open (the cap, %s)",
                        self._refused, cap, constants.PACK_WS_MAX_SESSIONS)
            self._refused, self._last_refusal_log = 0, now

    async def _session(self, lib: _Library, req: HttpRequest, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter, websocket: Callable[[Any], Awaitable[object]] | None,
                       settings: WebSocketSettings, hold: Callable[[], Callable[[], None]]) -> None:
        connection = AsgiConnection(lib, req, reader, writer, settings)
        if connection.handshake is None or connection.handshake.status_code != 101:
            await _quietly(connection.refuse_handshake())
            return
        self._open.add(connection)
        release = hold()
        try:
            await run_session(connection, model_websocket(connection, req), websocket)
        finally:
            try:
                await connection.finish()
            finally:
                self._open.discard(connection)
                release()


async def run_session(connection: AsgiConnection, ws: Any,
                      websocket: Callable[[Any], Awaitable[object]] | None) -> None:
    """Truss's endpoint: accept, run the model's websocket, close with what its outcome says."""
    gone = disconnect_types()
    lost: tuple[type[BaseException], ...] = (*gone, OSError)
    try:
        await ws.accept()
    except lost:
        return
    if websocket is None:
        log.error(NOT_IMPLEMENTED_MESSAGE)
        await _safe_close(ws, UNSUPPORTED_DATA, NOT_IMPLEMENTED_MESSAGE)
        return
    try:
        await websocket(ws)
    except gone as exc:
        log.info("Client terminated websocket connection: `%s`.", exc)
        return
    except Exception as exc:  # the model's error: logged, and the client sees 1011
        log.error("%s (`websocket` raised)", MODEL_ERROR_MESSAGE, exc_info=exc)
        await _safe_close(ws, INTERNAL_ERROR, MODEL_ERROR_MESSAGE)
        return
    await _safe_close(ws, NORMAL_CLOSURE, None)


async def _safe_close(ws: Any, code: int, reason: str | None) -> None:
    expected: tuple[type[BaseException], ...] = (RuntimeError, OSError, *disconnect_types())
    try:
        await ws.close(code=code, reason=reason)
    except expected as exc:  # closed already, or the client is gone
        log.debug("WebSocket already closed: `%s`.", exc)


async def _quietly(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except OSError:
        pass
