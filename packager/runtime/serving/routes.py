"""Truss's HTTP routes (truss-compat §2.6) on top of http_server, and the mapping of every failure
to Truss's status codes and error headers.

    GET  /                                   liveness: 200 true, also while loading
    GET  /v1/models/{name}                   readiness: 503 until loaded, then is_healthy()
    GET  /v1/models/{name}/loaded, /ping     loaded (ignores is_healthy)
    POST /v1/models/{name}:predict[_binary], /invocations      predict pipeline
    GET  /v1/models/{name}/schema            pydantic schema; 404 when untyped
    POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/messages, /v1/responses
    GET  /metrics                            Prometheus text
    GET  /v1/websocket (Upgrade)             the model's websocket (websocket.py)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any, Protocol

from ..prefetch.process import Prefetch
from ..timeline import Timeline
from . import metrics, pydantic_types, serialization, websocket
from .http_errors import (
    CLIENT,
    DOWNSTREAM,
    MODEL_ERROR_MESSAGE,
    UNEXPECTED,
    HttpError,
    error_headers,
    error_response,
    not_ready,
)
from .http_server import HttpRequest, HttpResponse, Response, StreamResponse
from .model_spec import OPENAI_METHODS, REQUEST, MethodSpec, ModelDefinitionError
from .pipeline import (
    ChunkStream,
    ClientDisconnected,
    ModelError,
    Pipeline,
    UserResponse,
    Value,
    is_http_exception,
)
from .request_adapter import make_request

log = logging.getLogger("pack.server")
MODEL_NAME = "model"
JSON = "application/json"
BINARY = "application/octet-stream"


class ServerState(Protocol):
    """What the routes read from the server (server.ModelServer implements it)."""

    ready: bool
    pipeline: Pipeline | None
    config: dict[str, Any]
    timeline: Timeline
    prefetch: Prefetch


def _json(value: object, status: int = 200) -> HttpResponse:
    return HttpResponse(status, json.dumps(value).encode(), content_type=JSON)


def _plain_error(status: int, detail: str) -> HttpResponse:
    return HttpResponse(status, json.dumps({"detail": detail}).encode(), content_type=JSON)


class TrussRoutes:
    def __init__(self, state: ServerState):
        self._state = state
        self.websockets = websocket.WebSocketSessions()

    async def handle(self, req: HttpRequest) -> Response:
        try:
            return await self._dispatch(req)
        except HttpError as exc:
            return exc.response()
        except ClientDisconnected as exc:  # Truss: HTTPException(499); the client is gone anyway
            return error_response(499, str(exc), DOWNSTREAM)
        except ModelError:
            return error_response(500, MODEL_ERROR_MESSAGE, DOWNSTREAM)
        except ModelDefinitionError as exc:
            log.error("ModelDefinitionError: %s", exc)
            return error_response(500, f"ModelDefinitionError: {exc}", DOWNSTREAM)
        except Exception as exc:  # every failure becomes a Truss error response
            if is_http_exception(exc):
                return error_response(exc.status_code, exc.detail, DOWNSTREAM)
            log.exception("unhandled error serving %s %s", req.method, req.path)
            return error_response(500, f"Unhandled exception: {type(exc).__name__}: {exc}", UNEXPECTED)

    async def _dispatch(self, req: HttpRequest) -> Response:
        path, method = req.path, req.method
        get = method in ("GET", "HEAD")
        if path == "/":
            return _json(True) if get else _plain_error(405, "Method Not Allowed")
        if path == "/metrics" and get:
            text = metrics.render(self._state.timeline, self._state.prefetch)
            return HttpResponse(200, text.encode(), content_type="text/plain; version=0.0.4; charset=utf-8")
        if path == "/ping" and get:
            return self._loaded()
        if path == "/invocations" and method == "POST":
            return await self._predict(req, None)
        if path in OPENAI_METHODS and method == "POST":
            spec = self._pipeline().spec.openai.get(path)
            if spec is None:
                raise HttpError(404, f"the model does not implement `{OPENAI_METHODS[path]}`", CLIENT)
            return await self._predict(req, spec)
        if path == websocket.ROUTE and method == "GET":
            return self._websocket(req)
        if path.startswith("/v1/models/"):
            rest = path[len("/v1/models/"):]
            name, colon, action = rest.partition(":")
            if colon and "/" not in name and action in ("predict", "predict_binary"):
                return await self._predict(req, None) if method == "POST" else _plain_error(405, "Method Not Allowed")
            name, slash, sub = rest.partition("/")
            if not slash and name and get:
                return await self._readiness()
            if sub == "loaded" and get:
                return self._loaded()
            if sub == "schema" and get:
                return self._schema()
        return _plain_error(404, "Not Found")

    # --- health --------------------------------------------------------------------------------
    def _pipeline(self) -> Pipeline:
        pipeline = self._state.pipeline
        if not self._state.ready or pipeline is None:
            raise not_ready(MODEL_NAME)
        return pipeline

    def _loaded(self) -> HttpResponse:
        self._pipeline()
        return _json({})

    async def _readiness(self) -> HttpResponse:
        pipeline = self._pipeline()
        is_healthy = pipeline.spec.is_healthy
        if is_healthy is not None:
            release = pipeline.hold()
            try:
                healthy = bool(await pipeline.call_plain(is_healthy))
            except Exception as exc:  # noqa: BLE001 - a raising health check means unhealthy
                log.warning("is_healthy() raised %s: %s; reporting not ready", type(exc).__name__, exc)
                healthy = False
            finally:
                release()
            if not healthy:
                raise not_ready(MODEL_NAME)
        return _json({})

    def _schema(self) -> HttpResponse:
        if not self._state.ready or self._state.pipeline is None:
            raise HttpError(503, "Schema not available, please try again later.", DOWNSTREAM)
        schema = self._state.pipeline.spec.schema()
        if schema is None:
            raise HttpError(404, "No schema found", DOWNSTREAM)
        return _json(schema)

    def _websocket(self, req: HttpRequest) -> Response:
        pipeline = self._pipeline()
        method = pipeline.spec.websocket
        return self.websockets.handle(req, method.fn if method is not None else None,
                                      websocket.WebSocketSettings.from_config(self._state.config), pipeline.hold)

    # --- predict -------------------------------------------------------------------------------
    async def _predict(self, req: HttpRequest, openai: MethodSpec | None) -> Response:
        pipeline = self._pipeline()
        # Held until the response is sent: a reload retires this pipeline, and it closes only
        # after the requests it started have ended on the instance they started on.
        release = pipeline.hold()
        try:
            response = await self._predict_on(pipeline, req, openai)
        except BaseException:
            release()
            raise
        if isinstance(response, StreamResponse):
            on_close = response.on_close

            def closed(completed: bool) -> object:
                try:
                    return None if on_close is None else on_close(completed)
                finally:
                    release()

            response.on_close = closed
        else:
            release()
        return response

    async def _predict_on(self, pipeline: Pipeline, req: HttpRequest, openai: MethodSpec | None) -> Response:
        spec = pipeline.spec
        binary = (req.headers.lowered.get("content-type") or "").split(";")[0].strip().lower() == BINARY
        first = openai or spec.preprocess or spec.predict
        if first is None:
            raise HttpError(404, f"the model defines `websocket` and no `predict`: connect to "
                                 f"{websocket.ROUTE} with a WebSocket client", CLIENT)
        request_type = openai.request_type if openai is not None else spec.request_type
        request = make_request(request_type, req) if request_type is not None else None
        inputs = self._parse(req, binary, first.input_model) if first.mode != REQUEST else None
        if openai is not None:
            outcome = await pipeline.unlimited(openai, inputs, request, req.is_disconnected)
        else:
            outcome = await pipeline.predict(inputs, request, req.is_disconnected)
        return await self._respond(outcome, req, binary)

    @staticmethod
    def _parse(req: HttpRequest, binary: bool, model_class: type | None) -> object:
        try:
            if binary:
                value = serialization.parse_msgpack(req.body)
                return pydantic_types.validate_python(model_class, value) if model_class else value
            if model_class is not None:
                return pydantic_types.validate_json(model_class, req.body)
            return serialization.parse_json(req.body)
        except HttpError:
            raise
        except Exception as exc:  # pydantic errors are recognised by name
            if pydantic_types.is_validation_error(exc):
                raise HttpError(400, pydantic_types.format_validation_error(exc), CLIENT) from None
            raise

    async def _respond(self, outcome: Value | ChunkStream | UserResponse, req: HttpRequest,
                       binary: bool) -> Response:
        if isinstance(outcome, ChunkStream):
            accept = (req.headers.get("accept") or "").lower()
            agent = (req.headers.get("user-agent") or "").lower()
            if "application/json" in accept and "openai" not in agent:
                return _json(await outcome.gather_text())
            # Sent at once, before the first chunk; closing it (sent, failed or the client gone)
            # closes the generator, which a HEAD or an abort would otherwise leave parked.
            return StreamResponse(200, outcome.chunks(), content_type=BINARY,
                                  on_close=lambda _: outcome.cancel())
        if isinstance(outcome, UserResponse):
            return _user_response(outcome)
        result = outcome.result
        try:
            if binary:
                body = result if isinstance(result, bytes) else serialization.to_msgpack(result)
                return HttpResponse(200, body, content_type=BINARY)
            return HttpResponse(200, serialization.to_json(result), content_type=JSON)
        except (TypeError, ValueError, OverflowError) as exc:
            log.error("the predict result could not be serialised: %s", exc)
            raise HttpError(500, f"the predict result could not be serialised as "
                                 f"{'msgpack' if binary else 'JSON'}: {exc}", DOWNSTREAM) from None


def _user_response(outcome: UserResponse) -> Response:
    """A starlette Response returned by the model, sent as is (plus error headers when >= 300)."""
    resp = outcome.response
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.raw_headers
               if k.lower() not in (b"content-length", b"transfer-encoding", b"connection")]
    if resp.status_code >= 300:
        headers += error_headers(CLIENT)
    background = getattr(resp, "background", None)

    def finished(_: bool) -> object:
        outcome.release()
        return background() if background is not None else None

    if hasattr(resp, "body_iterator"):
        return StreamResponse(resp.status_code, _encoded(resp.body_iterator), headers,
                              content_type=None, on_close=finished)
    if background is not None:
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(background()))
    outcome.release()
    body = resp.body if hasattr(resp, "body") else b""  # is_response: a body where no body_iterator
    return HttpResponse(resp.status_code, bytes(body), headers)


async def _encoded(iterator: AsyncIterable[str | bytes] | Iterable[str | bytes]) -> AsyncIterator[bytes]:
    """A returned StreamingResponse's body, pulled as the client reads (nothing runs ahead), its
    iterator closed when the response ends, the client gone included (not left to the GC)."""
    try:
        if hasattr(iterator, "__aiter__"):
            async for chunk in iterator:
                yield chunk.encode() if isinstance(chunk, str) else chunk
        else:
            for chunk in iterator:
                yield chunk.encode() if isinstance(chunk, str) else chunk
    finally:
        aclose = getattr(iterator, "aclose", None)
        close = getattr(iterator, "close", None)
        if aclose is not None:
            await aclose()
        elif close is not None:
            close()
