"""Truss's HTTP contract, route by route, against one running model server."""

from __future__ import annotations

import socket
import time

import pytest

from tests.runtime.harness import Runtime, make_app

MODEL = """
    import time


    class HTTPException(Exception):  # what fastapi.HTTPException looks like to the runtime
        def __init__(self, status_code, detail):
            super().__init__(detail)
            self.status_code = status_code
            self.detail = detail


    class Model:
        def __init__(self, **kwargs):
            self._data_dir = kwargs["data_dir"]

        def load(self):
            time.sleep(1.5)  # a window in which the server answers while loading

        def is_healthy(self):
            if (self._data_dir / "health_raises").exists():
                raise RuntimeError("health check exploded")
            return not (self._data_dir / "unhealthy").exists()

        def preprocess(self, inputs):
            inputs.setdefault("trace", []).append("pre")
            return inputs

        def predict(self, inputs):
            inputs["trace"].append("predict")
            if inputs.get("fail") == "error":
                raise ValueError("model exploded")
            if inputs.get("fail") == "http":
                raise HTTPException(418, "teapot says no")
            return inputs

        def postprocess(self, outputs):
            outputs["trace"].append("post")
            return outputs

        async def chat_completions(self, inputs):
            return {"choices": [inputs["messages"][-1]]}
"""

REQUEST_MODEL = """
    from __future__ import annotations  # `Request` stays a string: starlette is not installed


    class Model:
        async def predict(self, inputs, request: Request):
            return {"inputs": inputs, "method": request.method, "path": request.url.path,
                    "query": request.query_params, "header": request.headers.get("x-test"),
                    "raw": (await request.body()).decode(),
                    "disconnected": await request.is_disconnected()}
"""

RAW_REQUEST_MODEL = """
    class Model:
        async def predict(self, request: "starlette.requests.Request"):
            return {"raw": (await request.body()).decode()}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("endpoints"), MODEL)
    rt = Runtime(app).start()
    rt.wait_listening()
    early = {
        "/": rt.request("GET", "/"),
        "ready": rt.request("GET", "/v1/models/model"),
        "loaded": rt.request("GET", "/v1/models/model/loaded"),
        "predict": rt.request("POST", "/v1/models/model:predict", {"a": 1}),
        "schema": rt.request("GET", "/v1/models/model/schema"),
    }
    rt.wait_ready()
    yield rt, early
    rt.kill()


def test_liveness_answers_while_loading_and_everything_else_is_503(served):
    _, early = served
    assert early["/"][0] == 200 and early["/"][2] == b"true"
    for key in ("ready", "loaded", "predict"):
        status, headers, body = early[key]
        assert status == 503, key
        assert body == b'{"error": "Model with name model is not ready."}'
        assert headers["x-baseten-error-source"] == "04"
        assert headers["x-baseten-error-code"] == "600"
    assert early["schema"][0] == 503
    assert b"Schema not available" in early["schema"][2]


def test_readiness_and_loaded_after_load(served):
    rt, _ = served
    assert rt.json("GET", "/v1/models/model") == (200, {})
    assert rt.json("GET", "/v1/models/anything") == (200, {})  # {name} accepts any value
    assert rt.json("GET", "/v1/models/model/loaded") == (200, {})
    assert rt.json("GET", "/ping") == (200, {})


def test_readiness_follows_is_healthy_but_loaded_does_not(served):
    rt, _ = served
    data = rt.app.root / "data"
    (data / "unhealthy").touch()
    try:
        assert rt.request("GET", "/v1/models/model")[0] == 503
        assert rt.request("GET", "/v1/models/model/loaded")[0] == 200
    finally:
        (data / "unhealthy").unlink()
    (data / "health_raises").touch()
    try:
        assert rt.request("GET", "/v1/models/model")[0] == 503
    finally:
        (data / "health_raises").unlink()
    assert rt.request("GET", "/v1/models/model")[0] == 200


def test_predict_runs_preprocess_predict_postprocess_in_order(served):
    rt, _ = served
    status, body = rt.predict({"x": 1})
    assert status == 200
    assert body == {"x": 1, "trace": ["pre", "predict", "post"]}


def test_predict_aliases(served):
    rt, _ = served
    for path in ("/v1/models/model:predict_binary", "/invocations", "/v1/models/other:predict"):
        status, body = rt.json("POST", path, {"y": 2})
        assert status == 200, path
        assert body["trace"] == ["pre", "predict", "post"]


def test_invalid_json_is_400_with_client_error_headers(served):
    rt, _ = served
    status, headers, body = rt.request("POST", "/v1/models/model:predict", b"{not json")
    assert status == 400
    assert body.startswith(b'{"error": "Invalid JSON payload:')
    assert headers["x-baseten-error-code"] == "700"
    assert headers["content-type"] == "application/json"


def test_json_nested_beyond_the_recursion_limit_is_400_and_the_server_still_answers(served):
    rt, _ = served
    deep = b"[" * 100_000 + b"]" * 100_000
    status, headers, body = rt.request("POST", "/v1/models/model:predict", deep)
    assert (status, headers["x-baseten-error-code"]) == (400, "700")
    assert b"nested too deeply" in body
    assert rt.request("POST", "/v1/models/model:predict", {"a": 1})[0] == 200


def test_model_exception_is_500_with_generic_message_and_traceback_in_log(served):
    rt, _ = served
    status, headers, body = rt.request("POST", "/v1/models/model:predict", {"fail": "error"})
    assert status == 500
    assert body == b'{"error": "Internal Server Error (in model/chainlet)."}'
    assert headers["x-baseten-error-code"] == "600"
    logs = rt.logs()
    assert "ValueError: model exploded" in logs and "Traceback" in logs


def test_user_http_exception_keeps_its_status_and_detail(served):
    rt, _ = served
    status, headers, body = rt.request("POST", "/v1/models/model:predict", {"fail": "http"})
    assert status == 418
    assert body == b'{"error": "teapot says no"}'
    assert headers["x-baseten-error-source"] == "04"


def test_openai_routes_call_the_same_named_method_or_404(served):
    rt, _ = served
    status, body = rt.json("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
    assert (status, body) == (200, {"choices": [{"role": "user", "content": "hi"}]})
    status, body = rt.json("POST", "/v1/embeddings", {"input": "x"})
    assert status == 404 and "embeddings" in body["error"]


def test_untyped_model_has_no_schema(served):
    rt, _ = served
    assert rt.json("GET", "/v1/models/model/schema") == (404, {"error": "No schema found"})


def test_unknown_routes_and_methods(served):
    rt, _ = served
    assert rt.request("GET", "/nope")[0] == 404
    assert rt.request("GET", "/v1/models/model:predict")[0] == 405
    assert rt.request("POST", "/")[0] == 405


def test_metrics_expose_the_startup_timeline(served):
    rt, _ = served
    status, headers, body = rt.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()
    for stage in ("process_start", "server_listening", "import_end", "init_end", "load_end", "ready"):
        assert f'pack_startup_stage_seconds{{stage="{stage}"}}' in text
    from packager.runner import startup_timeline  # what `pack run` prints

    assert startup_timeline(f"http://127.0.0.1:{rt.port}")["stages"]["ready"] > 0
    timeline = rt.timeline()
    stages = timeline["stages"]
    order = ("server_listening", "import_end", "init_end", "load_end", "ready")
    assert [stages[s] for s in order] == sorted(stages[s] for s in order)
    assert stages["load_end"] - stages["init_end"] >= 1.4  # load() sleeps 1.5 s


def _raw(port: int, payload: bytes, expect_responses: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        data = b""
        deadline = time.monotonic() + 10
        while data.count(b"HTTP/1.1 ") < expect_responses and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        time.sleep(0.1)
        s.setblocking(False)
        try:
            data += s.recv(65536)
        except BlockingIOError:
            pass
        return data


def test_keep_alive_chunked_request_body_and_expect_continue(served):
    rt, _ = served
    body = b'{"k": 1}'
    chunked = b"4\r\n" + body[:4] + b"\r\n4\r\n" + body[4:] + b"\r\n0\r\n\r\n"
    payload = (
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /v1/models/model:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
        + b"POST /v1/models/model:predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Length: 8\r\nConnection: close\r\n\r\n" + body
    )
    data = _raw(rt.port, payload, 4)
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert b"HTTP/1.1 100 Continue" in data
    assert data.count(b'"trace": ["pre", "predict", "post"]') == 2


def test_malformed_request_line_is_400(served):
    rt, _ = served
    data = _raw(rt.port, b"NONSENSE\r\n\r\n", 1)
    assert data.startswith(b"HTTP/1.1 400")


def test_request_object_is_passed_when_annotated(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, REQUEST_MODEL))
    rt.wait_ready()
    status, body = rt.json("POST", "/v1/models/model:predict?a=1", {"v": 2}, headers={"X-Test": "yes"})
    assert status == 200
    assert body == {"inputs": {"v": 2}, "method": "POST", "path": "/v1/models/model:predict",
                    "query": {"a": "1"}, "header": "yes", "raw": '{"v": 2}', "disconnected": False}


def test_request_only_predict_gets_the_unparsed_body(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, RAW_REQUEST_MODEL))
    rt.wait_ready()
    assert rt.json("POST", "/v1/models/model:predict", b"not json at all") == (200, {"raw": "not json at all"})


RESPONSE_MODEL = """
    class Response:  # the attributes of starlette.responses.Response the runtime relies on
        def __init__(self, body, status_code=200, headers=None, media_type="text/plain"):
            self.body = body
            self.status_code = status_code
            self.raw_headers = [(b"content-type", media_type.encode()), (b"content-length", b"999")]
            self.raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]


    class StreamingResponse:
        def __init__(self, iterator, status_code=200):
            self.body_iterator = iterator
            self.status_code = status_code
            self.raw_headers = [(b"content-type", b"text/event-stream")]


    async def events():
        for i in range(3):
            yield f"data: {i}\\n\\n"


    class Model:
        def predict(self, inputs):
            kind = inputs["kind"]
            if kind == "created":
                return Response(b"made it", status_code=201, headers={"x-custom": "1"})
            if kind == "missing":
                return Response(b"no such thing", status_code=404)
            return StreamingResponse(events())
"""


def test_a_returned_response_is_sent_as_is(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, RESPONSE_MODEL))
    rt.wait_ready()
    status, headers, body = rt.request("POST", "/v1/models/model:predict", {"kind": "created"})
    assert (status, body, headers["x-custom"], headers["content-type"]) == (201, b"made it", "1", "text/plain")
    assert headers["content-length"] == "7"  # recomputed, never the model's stale value
    assert "x-baseten-error-code" not in headers
    status, headers, body = rt.request("POST", "/v1/models/model:predict", {"kind": "missing"})
    assert (status, body, headers["x-baseten-error-code"]) == (404, b"no such thing", "700")
    status, headers, body = rt.request("POST", "/v1/models/model:predict", {"kind": "stream"})
    assert (status, headers["content-type"]) == (200, "text/event-stream")
    assert body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"


def test_postprocess_with_a_streaming_predict_is_a_clear_500(tmp_path, runtimes):
    code = """
        class Model:
            def predict(self, inputs):
                yield "x"

            def postprocess(self, outputs):
                return outputs
    """
    rt = runtimes(make_app(tmp_path, code))
    rt.wait_ready()
    status, body = rt.predict({})
    assert status == 500 and "postprocess cannot run" in body["error"]
