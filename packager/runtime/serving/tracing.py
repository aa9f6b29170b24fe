"""OpenTelemetry spans for `runtime.enable_tracing_data`, named as Truss names them.

    predict-endpoint                 one per predict request (or `<method>-endpoint` for the
                                     OpenAI-style routes); its parent is the caller's `traceparent`
      call-pre / call-predict / call-post / call-<method>    one per model method called

Spans go to an OTLP/HTTP collector at the address the standard variables give
(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT plus /v1/traces; headers,
timeout, compression, certificates and batching from their OTEL_* variables too). Tracing is on
only when the config asks for it, an endpoint is set and the SDK is importable: the build plan
installs SDK_REQUIREMENTS into images whose config sets enable_tracing_data. Otherwise nothing of
OpenTelemetry is imported and every hook here is a no-op.

Like Truss, the spans stay apart from the model's own tracing: the provider is not the global
one, and model code runs with no current span of ours, so spans the model makes do not nest under
them. Chains still join the trace: while a method runs, current_traceparent() is its span's W3C
traceparent, which chains' RPC sends on calls to other chainlets.

A stream's call-predict span lasts until the generator finishes, as in Truss.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Iterator
from types import AsyncGeneratorType, GeneratorType
from typing import Any, Protocol, TypeVar

log = logging.getLogger("pack.tracing")
T = TypeVar("T")


class Carrier(Protocol):
    """Request headers, read case-insensitively (http_server.Headers)."""

    def get(self, name: str, default: str | None = None) -> str | None: ...


# What the image needs for tracing (installed by the build plan when enable_tracing_data is set;
# Truss's lower bound). Only the HTTP exporter: no gRPC wheels in the image.
SDK_REQUIREMENTS = ("opentelemetry-sdk>=1.25.0", "opentelemetry-exporter-otlp-proto-http>=1.25.0")
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SERVICE_NAME = "truss-server"  # Truss's service.name, unless OTEL_SERVICE_NAME (or ..._ATTRIBUTES) names one
STAGE_SPANS = {"preprocess": "call-pre", "predict": "call-predict", "postprocess": "call-post"}

_tracer: Any = None  # the SDK's Tracer while tracing is on
_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar("pack_traceparent", default=None)


def configure(enabled: bool) -> bool:
    """Turn tracing on when `enabled` (the config's enable_tracing_data), an OTLP endpoint is set
    and the SDK imports; True when it is on. Called once, before serving."""
    global _tracer
    if not enabled:
        return False
    endpoint = next((os.environ[v] for v in ENDPOINT_VARIABLES if os.environ.get(v)), None)
    if endpoint is None:
        log.info("enable_tracing_data is set, but neither %s is: no spans are exported",
                 " nor ".join(ENDPOINT_VARIABLES))
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME as SERVICE_NAME_KEY
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        log.warning("enable_tracing_data is set, but the OpenTelemetry SDK is not importable (%s); "
                    "install %s to export spans", exc, " and ".join(SDK_REQUIREMENTS))
        return False
    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME_KEY, "")).startswith("unknown_service"):  # neither set
        resource = resource.merge(Resource({SERVICE_NAME_KEY: SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # flushed at exit
    _tracer = provider.get_tracer("truss_server")
    log.info("exporting spans to %s", endpoint)
    return True


def active() -> bool:
    return _tracer is not None


def current_traceparent() -> str | None:
    """The W3C traceparent of the span of the model method running now, when tracing is on."""
    return _traceparent.get()


@contextlib.contextmanager
def endpoint(method: str, headers: Carrier) -> Iterator[None]:
    """The request's top span, `<method>-endpoint`, child of the caller's trace context (the
    `traceparent` header, through the propagators OTEL_PROPAGATORS names)."""
    if _tracer is None:
        yield
        return
    from opentelemetry import propagate

    with _tracer.start_as_current_span(f"{method}-endpoint", context=propagate.extract(headers)) as span:
        token = _traceparent.set(_w3c(span))
        try:
            yield
        finally:
            _traceparent.reset(token)


async def traced(method: str, call: Awaitable[T]) -> T:
    """Await a model method's call inside its span (a child of the current endpoint span). A
    generator result is returned wrapped, so that the span ends when the stream does."""
    if _tracer is None:
        return await call
    span = _tracer.start_span(STAGE_SPANS.get(method, f"call-{method}"))
    try:
        with _model_context(_w3c(span)):
            result = await call
    except BaseException as exc:
        _end(span, exc)
        raise
    if isinstance(result, GeneratorType):
        return _sync_stream(result, span)  # type: ignore[return-value]  # the same kind of object
    if isinstance(result, AsyncGeneratorType):
        return _async_stream(result, span)  # type: ignore[return-value]
    span.end()
    return result


@contextlib.contextmanager
def _model_context(traceparent: str) -> Iterator[None]:
    """What model code runs in: no current span of ours (Truss detaches it), but the traceparent
    chains forwards. Set and reset within one step, so nothing leaks into a pool thread's context."""
    from opentelemetry import context, trace

    token = context.attach(trace.set_span_in_context(trace.INVALID_SPAN))
    parent = _traceparent.set(traceparent)
    try:
        yield
    finally:
        _traceparent.reset(parent)
        context.detach(token)


def _end(span: Any, failure: BaseException | None) -> None:
    if failure is not None:
        from opentelemetry.trace import Status, StatusCode

        span.record_exception(failure)
        span.set_status(Status(StatusCode.ERROR, f"{type(failure).__name__}: {failure}"))
    span.end()


@contextlib.contextmanager
def _ending(span: Any) -> Iterator[None]:
    """End `span` when the block ends, marked failed when it raised (a stream's close is not)."""
    failure = None
    try:
        yield
    except Exception as exc:
        failure = exc
        raise
    finally:
        _end(span, failure)


def _sync_stream(gen: GeneratorType[Any, Any, Any], span: Any) -> Iterator[Any]:
    traceparent = _w3c(span)
    with _ending(span), contextlib.closing(gen):
        while True:
            with _model_context(traceparent):
                try:
                    item = next(gen)
                except StopIteration:
                    return
            yield item


async def _async_stream(gen: AsyncGeneratorType[Any, Any], span: Any) -> AsyncIterator[Any]:
    traceparent = _w3c(span)
    with _ending(span):
        try:
            while True:
                with _model_context(traceparent):
                    try:
                        item = await gen.__anext__()
                    except StopAsyncIteration:
                        return
                yield item
        finally:
            await gen.aclose()


def _w3c(span: Any) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
