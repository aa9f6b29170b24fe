"""The request object handed to model methods that ask for one (`request: Request`).

When the annotation is starlette's or fastapi's Request and that package is installed (it must
be, for model.py to import it), the method gets a real instance of that class built on an ASGI
scope, so every attribute behaves as under Truss. Otherwise it gets RuntimeRequest, which offers
the commonly used subset with the same names.

Both answer `await request.is_disconnected()` from the connection itself, while the request waits
for its permit and while predict runs, and offer Truss's `request.state.watch_disconnect()`: a
context manager yielding a threading.Event set when the client goes (for sync code in a thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

from .http_server import Headers, HttpRequest


class _URL:
    def __init__(self, request: HttpRequest):
        host = request.headers.get("host") or "localhost"
        self.scheme = "http"
        self.netloc = host
        self.path = request.path
        self.query = request.query

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}" + (f"?{self.query}" if self.query else "")


class _Address:
    def __init__(self, peer: tuple[str, int] | None):
        self.host, self.port = (peer[0], peer[1]) if peer else ("", 0)

    def __iter__(self) -> Iterator[str | int]:
        return iter((self.host, self.port))


class RuntimeRequest:
    """starlette.requests.Request's common surface: method, url, headers, query_params, client,
    path_params, body(), json(), is_disconnected()."""

    def __init__(self, request: HttpRequest):
        self._request = request
        self.method = request.method
        self.url = _URL(request)
        self.headers: Headers = request.headers
        self.query_params = dict(parse_qsl(request.query, keep_blank_values=True))
        self.path_params: dict[str, str] = {}
        self.client = _Address(request.client)
        state = request_state(request)
        self.scope = {**asgi_scope(request), "state": state}
        self.state = SimpleNamespace(**state)

    async def body(self) -> bytes:
        return self._request.body

    async def json(self) -> Any:
        return json.loads(self._request.body)

    async def is_disconnected(self) -> bool:
        return self._request.is_disconnected()


def asgi_scope(request: HttpRequest) -> dict[str, object]:
    """The ASGI HTTP connection scope of this request (the keys starlette reads)."""
    server_host = request.headers.get("host") or "localhost"
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": request.version.split("/", 1)[1],
        "method": request.method,
        "scheme": "http",
        "path": request.path,
        "raw_path": request.target.split("?", 1)[0].encode("latin-1"),
        "root_path": "",
        "query_string": request.query.encode("latin-1"),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.raw],
        "client": tuple(request.client[:2]) if request.client else None,
        "server": (server_host.split(":")[0], 0),
        "path_params": {},
    }


def request_state(request: HttpRequest) -> dict[str, Any]:
    """What Truss puts in `request.state` (called on the serving loop)."""
    return {"watch_disconnect": disconnect_watcher(request, asyncio.get_running_loop())}


DISCONNECT_POLL_SECONDS = 0.1


def disconnect_watcher(request: HttpRequest, loop: asyncio.AbstractEventLoop) -> Callable[[], Any]:
    """Truss's `request.state.watch_disconnect`: with it, code in any thread gets an Event that
    is set once the client has gone (the loop looks every DISCONNECT_POLL_SECONDS)."""

    @contextlib.contextmanager
    def watch_disconnect() -> Iterator[threading.Event]:
        disconnected = threading.Event()

        async def watch() -> None:
            while not request.is_disconnected():
                await asyncio.sleep(DISCONNECT_POLL_SECONDS)
            disconnected.set()

        watching = asyncio.run_coroutine_threadsafe(watch(), loop)
        try:
            yield disconnected
        finally:
            watching.cancel()

    return watch_disconnect


def _asgi_receive(request: HttpRequest) -> Callable[[], Awaitable[dict[str, object]]]:
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        # Disconnect first: starlette's is_disconnected() takes one message, and must not be told
        # "a body" by a request whose client has gone.
        if request.is_disconnected():
            return {"type": "http.disconnect"}
        if not sent:
            sent = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        # Nothing more will arrive. starlette polls this under a cancelled scope (cancelled at
        # the first await); a caller waiting for the disconnect gets it.
        while not request.is_disconnected():
            await asyncio.sleep(DISCONNECT_POLL_SECONDS)
        return {"type": "http.disconnect"}

    return receive


def make_request(annotation: object, request: HttpRequest) -> object:
    """What a method annotated `request: <annotation>` receives for this request."""
    if isinstance(annotation, type) and any(
            c.__module__.split(".")[0] in ("starlette", "fastapi") for c in annotation.__mro__):
        try:
            instance = annotation({**asgi_scope(request), "state": request_state(request)},
                                  _asgi_receive(request))
        except Exception:  # noqa: BLE001, S110 - an incompatible starlette: use the subset
            pass
        else:
            # The body is read already, as under Truss (its endpoint reads it before the model
            # runs): body() and json() never wait on receive(), which is_disconnected() may use.
            instance._body = request.body
            return instance
    return RuntimeRequest(request)
