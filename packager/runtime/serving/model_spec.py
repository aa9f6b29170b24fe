"""What the model class offers, checked once at load against Truss's method contract.

Argument rules (Truss 0.18.30): predict/preprocess/postprocess take 0 args, 1 (the inputs, or the
raw request when annotated as a starlette/fastapi Request) or 2 (inputs, then an annotated
request). With preprocess, predict may not take only the request; postprocess may never take only
the request. is_healthy takes only self; setup_environment takes one argument. `websocket` replaces
predict: it takes exactly one argument (the websocket), must be `async def`, and excludes predict,
preprocess and postprocess. A violation is a ModelDefinitionError and fails the load.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from . import pydantic_types

NO_ARGS, INPUTS, REQUEST, INPUTS_AND_REQUEST = "none", "inputs", "request", "inputs+request"
OPENAI_METHODS = {  # route -> method name; served outside predict_concurrency
    "/v1/chat/completions": "chat_completions",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
    "/v1/messages": "messages",
    "/v1/responses": "responses",
}
_GENERATOR_ORIGINS = (collections.abc.Generator, collections.abc.AsyncGenerator,
                      collections.abc.Iterator, collections.abc.AsyncIterator)


class ModelDefinitionError(TypeError):
    """The model class does not meet the method contract."""


class Schema(TypedDict):
    """Truss's /schema document (the two JSON schemas as pydantic writes them)."""

    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    supports_streaming: bool


def is_request_annotation(annotation: object) -> bool:
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1] == "Request"
    if not isinstance(annotation, type):
        return False
    return any(c.__name__ == "Request" and c.__module__.split(".")[0] in ("starlette", "fastapi", "packager")
               for c in annotation.__mro__)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolvable forward references: use the raw annotations
        return dict(getattr(fn, "__annotations__", {}) or {})


def _streams(annotation: object) -> bool:
    origin = typing.get_origin(annotation) or annotation
    return isinstance(origin, type) and issubclass(origin, _GENERATOR_ORIGINS)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    fn: Callable[..., Any]  # the user's bound method: any arguments, any result
    mode: str  # NO_ARGS | INPUTS | REQUEST | INPUTS_AND_REQUEST
    is_coroutine: bool  # async def (awaited on the event loop)
    is_async_gen: bool  # async def with yield (iterated on the event loop)
    # Annotations as written: a class, a typing construct or (unresolved) a string.
    request_type: object = None  # the annotation of the request parameter
    input_annotation: object = None
    return_annotation: object = None

    def args(self, inputs: object, request: object) -> tuple[object, ...]:
        if self.mode == NO_ARGS:
            return ()
        if self.mode == INPUTS:
            return (inputs,)
        if self.mode == REQUEST:
            return (request,)
        return (inputs, request)

    @functools.cached_property  # read per request; walking the annotation's MRO each time is not free
    def input_model(self) -> type | None:
        return self.input_annotation if pydantic_types.is_model_class(self.input_annotation) else None


def describe_method(model: object, name: str) -> MethodSpec | None:
    fn = getattr(model, name, None)
    if fn is None:
        return None
    if not callable(fn):
        raise ModelDefinitionError(f"`{name}` of the model class is not a method")
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    hints = _hints(fn)
    annotations = [hints.get(p.name, p.annotation) for p in params]
    is_request = [is_request_annotation(a) for a in annotations]
    request_type = None
    if len(params) == 0:
        mode = NO_ARGS
    elif len(params) == 1:
        mode = REQUEST if is_request[0] else INPUTS
        request_type = annotations[0] if is_request[0] else None
    elif len(params) == 2:
        if is_request[0]:
            raise ModelDefinitionError(
                f"`{name}` takes the request first: with two arguments the inputs come first and "
                f"the request second, e.g. `def {name}(self, model_input, request: Request)`")
        if not is_request[1]:
            raise ModelDefinitionError(
                f"`{name}` takes two arguments but the second is not annotated as a request: "
                f"annotate it `request: starlette.requests.Request` (or fastapi.Request)")
        mode, request_type = INPUTS_AND_REQUEST, annotations[1]
    else:
        raise ModelDefinitionError(
            f"`{name}` takes {len(params)} arguments; it may take none, the inputs, the request, "
            f"or the inputs and then the request")
    return MethodSpec(
        name=name, fn=fn, mode=mode,
        is_coroutine=inspect.iscoroutinefunction(fn),
        is_async_gen=inspect.isasyncgenfunction(fn),
        request_type=request_type,
        input_annotation=annotations[0] if mode in (INPUTS, INPUTS_AND_REQUEST) else None,
        return_annotation=hints.get("return"),
    )


@dataclass(frozen=True)
class ModelSpec:
    predict: MethodSpec | None  # None for a websocket model
    preprocess: MethodSpec | None = None
    postprocess: MethodSpec | None = None
    is_healthy: Callable[[], object] | None = None
    setup_environment: Callable[[object], object] | None = None
    openai: dict[str, MethodSpec] = field(default_factory=dict)
    websocket: MethodSpec | None = None  # served at /v1/websocket (websocket.py)

    @property
    def parses_body(self) -> bool:
        """False when the first method sees only the raw request (the body is left unparsed)."""
        first = self.preprocess or self.predict
        return first is not None and first.mode != REQUEST

    @property
    def input_model(self) -> type | None:
        first = self.preprocess or self.predict
        return first.input_model if first is not None else None

    @functools.cached_property  # read per request
    def request_type(self) -> object:
        """The annotation of the request parameter of the first of preprocess, predict and
        postprocess that takes one (None: none does, no request object is built)."""
        methods = (self.preprocess, self.predict, self.postprocess)
        return next((m.request_type for m in methods if m is not None and m.request_type), None)

    def schema(self) -> Schema | None:
        """Truss's /schema document, or None when predict is not typed with pydantic models."""
        input_model = self.input_model
        last = self.postprocess or self.predict
        if input_model is None or last is None:
            return None
        returned = last.return_annotation
        output_model: type | None = None
        streaming = False
        if pydantic_types.is_model_class(returned):
            output_model = returned
        elif _streams(returned):
            streaming = True
        elif typing.get_origin(returned) is typing.Union:
            args = typing.get_args(returned)
            models = [a for a in args if pydantic_types.is_model_class(a)]
            if len(args) != 2 or len(models) != 1 or not any(_streams(a) for a in args):
                return None
            output_model, streaming = models[0], True
        else:
            return None
        return Schema(
            input_schema=pydantic_types.json_schema(input_model),
            output_schema=pydantic_types.json_schema(output_model) if output_model else None,
            supports_streaming=streaming,
        )


def describe_websocket(model: object) -> MethodSpec | None:
    """Truss's rules for `websocket` (model_wrapper.ModelDescriptor.from_model)."""
    fn = getattr(model, "websocket", None)
    if fn is None:
        return None
    if not callable(fn):
        raise ModelDefinitionError("`websocket` of the model class is not a method")
    present = [name for name in ("predict", "preprocess", "postprocess") if getattr(model, name, None) is not None]
    if present:
        raise ModelDefinitionError(
            f"the model defines `websocket` and {', '.join(f'`{n}`' for n in present)}: a websocket "
            f"model does all its work in `websocket` (remove {', '.join(present)})")
    params = list(inspect.signature(fn).parameters.values())
    hints = _hints(fn)
    if len(params) != 1 or is_request_annotation(hints.get(params[0].name, params[0].annotation)):
        raise ModelDefinitionError(
            "`websocket` must take exactly one argument besides self, the websocket: "
            "`async def websocket(self, websocket: fastapi.WebSocket)`")
    if not inspect.iscoroutinefunction(fn):
        raise ModelDefinitionError(
            "`websocket` must be an `async def` (without `yield`): "
            "`async def websocket(self, websocket: fastapi.WebSocket)`")
    return MethodSpec(name="websocket", fn=fn, mode=INPUTS, is_coroutine=True, is_async_gen=False,
                      input_annotation=hints.get(params[0].name), return_annotation=hints.get("return"))


def describe_model(model: object) -> ModelSpec:
    websocket = describe_websocket(model)
    predict = describe_method(model, "predict")
    if predict is None and websocket is None:
        raise ModelDefinitionError("the model class has no `predict` method (nor `websocket`)")
    preprocess = describe_method(model, "preprocess")
    postprocess = describe_method(model, "postprocess")
    if preprocess is not None and predict is not None and predict.mode == REQUEST:
        raise ModelDefinitionError(
            "with `preprocess`, `predict` must take the preprocessed inputs (it takes only the request)")
    if postprocess is not None and postprocess.mode == REQUEST:
        raise ModelDefinitionError("`postprocess` must take the predict output, not only the request")
    is_healthy = getattr(model, "is_healthy", None)
    if is_healthy is not None and inspect.signature(is_healthy).parameters:
        raise ModelDefinitionError("`is_healthy` must take no arguments besides self")
    setup_environment = getattr(model, "setup_environment", None)
    if setup_environment is not None and len(inspect.signature(setup_environment).parameters) != 1:
        raise ModelDefinitionError("`setup_environment` must take exactly one argument (the environment)")
    openai: dict[str, MethodSpec] = {}
    for route, name in OPENAI_METHODS.items():
        spec = describe_method(model, name)
        if spec is not None:
            openai[route] = spec
    return ModelSpec(predict, preprocess, postprocess, is_healthy, setup_environment, openai, websocket)
