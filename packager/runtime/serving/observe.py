"""Around every request of the Model-class server: its request metrics (request_metrics), its
endpoint span (tracing) and its request id in the log lines (log_format).

A streamed response counts as finished (and in flight until then) when its last chunk was sent
or the stream ended otherwise; the endpoint span ends when the response starts, as in Truss.
"""

from __future__ import annotations

from .http_server import Handler, HttpRequest, HttpResponse, Response, StreamResponse
from .log_format import chain_request_id, request_id
from .model_spec import OPENAI_METHODS
from .request_metrics import REQUESTS, route_of
from . import tracing

_PREDICT_ROUTES = frozenset({"/v1/models/{name}:predict", "/v1/models/{name}:predict_binary", "/invocations"})


def traced_method(route: str) -> str | None:
    """The model method a route calls, named as Truss's endpoint span is: None for the rest."""
    if route in _PREDICT_ROUTES:
        return "predict"
    return OPENAI_METHODS.get(route)


def observe(handler: Handler) -> Handler:
    async def observed(req: HttpRequest) -> Response:
        route = route_of(req.path)
        method = traced_method(route)
        started = REQUESTS.started()
        ids = (request_id.set(req.headers.get("x-baseten-request-id")),
               chain_request_id.set(req.headers.get("x-baseten-chain-request-id")))
        try:
            if method is None or not tracing.active():  # no context manager: per-request cost
                response = await handler(req)
            else:
                with tracing.endpoint(method, req.headers):
                    response = await handler(req)
        except BaseException:
            REQUESTS.finished(route, 500, started)
            raise
        finally:
            chain_request_id.reset(ids[1])
            request_id.reset(ids[0])
        if isinstance(response, StreamResponse):
            on_close = response.on_close
            status = response.status

            def closed(completed: bool) -> object:
                REQUESTS.finished(route, status, started)
                return None if on_close is None else on_close(completed)

            response.on_close = closed
        else:
            upgraded = 101  # an Upgrade: the connection was handed over (a WebSocket)
            REQUESTS.finished(route, response.status if isinstance(response, HttpResponse) else upgraded, started)
        return response

    return observed

