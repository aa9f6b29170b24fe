"""Around every request of the Model-class server: its request metrics (request_metrics), its
endpoint span (tracing) and its request id in the log lines (log_format), those of a WebSocket
session included (set for the whole session its upgrade request starts).

A streamed response counts as finished (and in flight until then) when its last chunk was sent
or the stream ended otherwise; the endpoint span ends when the response starts, as in Truss.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from time import monotonic

from .http_server import Handler, HttpRequest, HttpResponse, Response, StreamResponse, Upgrade
from .log_format import chain_request_id, request_id
from .model_spec import OPENAI_METHODS
from .request_metrics import OTHER_ROUTE, REQUESTS, route_of
from . import tracing

ROUTE_CACHE_SIZE = 256  # paths remembered with their route (a scanner's random paths are never kept)

_PREDICT_ROUTES = frozenset({"/v1/models/{name}:predict", "/v1/models/{name}:predict_binary", "/invocations"})


def traced_method(route: str) -> str | None:
    """The model method a route calls, named as Truss's endpoint span is: None for the rest."""
    if route in _PREDICT_ROUTES:
        return "predict"
    return OPENAI_METHODS.get(route)


def observe(handler: Handler) -> Handler:
    routes: dict[str, str] = {}  # path -> route template, for the paths the routes know
    metrics = REQUESTS

    async def observed(req: HttpRequest) -> Response:
        # Per request, so written out: no helper calls where a line does.
        path = req.path
        route = routes.get(path)
        if route is None:
            route = route_of(path)
            if route != OTHER_ROUTE and len(routes) < ROUTE_CACHE_SIZE:
                routes[path] = route
        started = monotonic()
        metrics.in_flight += 1
        headers = req.headers
        rid = headers.lowered.get("x-baseten-request-id")
        chain_rid = headers.lowered.get("x-baseten-chain-request-id")
        # The connection's task runs its requests one after another and each resets what it set:
        # without the headers the variables are at their default already (nothing to set).
        ids = None if rid is None and chain_rid is None else (request_id.set(rid), chain_request_id.set(chain_rid))
        try:
            method = traced_method(route) if tracing.active() else None
            if method is None:  # no context manager: per-request cost
                response = await handler(req)
            else:
                with tracing.endpoint(method, headers):
                    response = await handler(req)
        except BaseException:
            metrics.finished(route, 500, started)
            raise
        finally:
            if ids is not None:
                chain_request_id.reset(ids[1])
                request_id.reset(ids[0])
        if isinstance(response, HttpResponse):
            metrics.finished(route, response.status, started)
        elif isinstance(response, StreamResponse):
            on_close = response.on_close
            status = response.status

            def closed(completed: bool) -> object:
                metrics.finished(route, status, started)
                return None if on_close is None else on_close(completed)

            response.on_close = closed
        elif isinstance(response, Upgrade):  # the connection is handed over (a WebSocket)
            metrics.finished(route, 101, started)
            if ids is not None:  # its session's log lines carry the upgrade request's ids
                response = Upgrade(functools.partial(_with_ids, response.takeover, rid, chain_rid))
        return response

    return observed


async def _with_ids(takeover: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
                    rid: str | None, chain_rid: str | None, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
    """Run a connection's takeover with the request ids of the request that upgraded it set, as
    they are while a request is served (tasks it starts copy them)."""
    ids = request_id.set(rid), chain_request_id.set(chain_rid)
    try:
        await takeover(reader, writer)
    finally:
        chain_request_id.reset(ids[1])
        request_id.reset(ids[0])
