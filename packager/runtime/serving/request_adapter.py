"""The request object handed to model methods that ask for one (`request: Request`).

When the annotation is starlette's or fastapi's Request and that package is installed (it must
be, for model.py to import it), the method gets a real instance of that class built on an ASGI
scope, so every attribute behaves as under Truss. Otherwise it gets RuntimeRequest, which offers
the commonly used subset with the same names.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
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
        self.scope = asgi_scope(request)

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


def _asgi_receive(request: HttpRequest) -> Callable[[], Awaitable[dict[str, object]]]:
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        if request.is_disconnected():
            return {"type": "http.disconnect"}
        # Nothing more will arrive; starlette polls this under a cancelled scope, so park here.
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    return receive


def make_request(annotation: object, request: HttpRequest) -> object:
    """What a method annotated `request: <annotation>` receives for this request."""
    if isinstance(annotation, type) and any(
            c.__module__.split(".")[0] in ("starlette", "fastapi") for c in annotation.__mro__):
        try:
            return annotation(asgi_scope(request), _asgi_receive(request))
        except Exception:  # noqa: BLE001, S110 - an incompatible starlette: use the subset
            pass
    return RuntimeRequest(request)
