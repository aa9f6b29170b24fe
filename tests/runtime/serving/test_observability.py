"""What the server tells about itself: request metrics and the model's own prometheus_client
metrics at /metrics, OpenTelemetry spans (exported to an OTLP collector stand-in, chains joining
the trace), and log lines as Truss writes them (JSON, or plain text when asked)."""

from __future__ import annotations

import json
import os
import re
import threading
import time

import pytest

from packager.runtime.serving import log_format
from tests.fixtures.otlp_collector import OtlpCollector
from tests.fixtures.prometheus_text import samples as metric_samples
from tests.runtime.harness import make_app
from tests.runtime.serving.raw_http import exchange, request

PREDICT = "/v1/models/model:predict"
ROUTE = 'route="/v1/models/{name}:predict"'

# predict waits for the `release` file while asked to, so that requests queue behind it.
QUEUEING_MODEL = """
    import time


    class Model:
        def __init__(self, **kwargs):
            self._data_dir = kwargs["data_dir"]

        def predict(self, inputs):
            if inputs.get("hold"):
                while not (self._data_dir / "release").exists():
                    time.sleep(0.02)
            if inputs.get("fail"):
                raise ValueError("asked to fail")
            if inputs.get("stream"):
                return (f"chunk {i};" for i in range(3))
            return inputs
"""


def _metrics(rt) -> str:
    status, headers, body = rt.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    return body.decode()


def _wait_metric(rt, key: str, value: float, timeout: float = 20.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        samples = metric_samples(_metrics(rt))
        if samples.get(key) == value:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"{key} never reached {value}: {samples.get(key)}\n{rt.logs()}")
        time.sleep(0.05)


# --- request metrics ---------------------------------------------------------------------------
def test_request_metrics_count_routes_statuses_latency_in_flight_and_queue_wait(tmp_path, runtimes):
    app = make_app(tmp_path, QUEUEING_MODEL)
    rt = runtimes(app)
    rt.wait_ready()
    results: list[int] = []
    held = [threading.Thread(target=lambda: results.append(rt.predict({"hold": True})[0]))
            for _ in range(3)]
    for thread in held:
        thread.start()
    # One predict runs (holding the only permit), two wait for it; /metrics itself is in flight.
    during = _wait_metric(rt, "pack_predict_queued_requests", 2)
    assert during["pack_requests_in_flight"] == 4
    (app.root / "data" / "release").write_text("")
    for thread in held:
        thread.join(30)
    assert results == [200, 200, 200]
    assert rt.predict({"fail": True})[0] == 500
    status, _, body = rt.request("POST", PREDICT, {"stream": True})
    assert status == 200 and body == b"chunk 0;chunk 1;chunk 2;"
    assert rt.request("GET", "/no/such/path")[0] == 404
    assert rt.request("GET", "/v1/models/model/schema")[0] == 404

    text = _metrics(rt)
    samples = metric_samples(text)
    assert samples[f'pack_requests_total{{{ROUTE},status="200"}}'] == 4  # 3 held + the stream
    assert samples[f'pack_requests_total{{{ROUTE},status="500"}}'] == 1
    assert samples['pack_requests_total{route="other",status="404"}'] == 1  # never the raw path
    assert samples['pack_requests_total{route="/v1/models/{name}/schema",status="404"}'] == 1
    assert "/no/such/path" not in text
    assert samples["pack_requests_in_flight"] == 1  # this scrape
    assert samples["pack_predict_queued_requests"] == 0
    # Latency: 5 predicts; the held ones lasted at least until the release, so the sum is positive
    # and the buckets add up.
    assert samples[f"pack_request_duration_seconds_count{{{ROUTE}}}"] == 5
    assert samples[f'pack_request_duration_seconds_bucket{{{ROUTE},le="+Inf"}}'] == 5
    assert samples[f"pack_request_duration_seconds_sum{{{ROUTE}}}"] > 0
    buckets = [v for k, v in samples.items() if k.startswith(f"pack_request_duration_seconds_bucket{{{ROUTE}")]
    assert buckets == sorted(buckets)  # cumulative
    # Queue wait: every predict took a permit once; two of them waited for the held one.
    assert samples["pack_predict_queue_wait_seconds_count"] == 5
    assert samples["pack_predict_queue_wait_seconds_sum"] > 0
    waited_long = samples['pack_predict_queue_wait_seconds_bucket{le="+Inf"}'] - \
        samples['pack_predict_queue_wait_seconds_bucket{le="0.005"}']
    assert waited_long >= 2
    assert "# TYPE pack_request_duration_seconds histogram" in text
    assert "# TYPE pack_requests_total counter" in text


def test_requests_the_http_layer_refuses_are_counted(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, QUEUEING_MODEL), PACK_HTTP_HEAD_TIMEOUT="1", PACK_HTTP_MAX_BODY_BYTES="1000")
    rt.wait_ready()
    assert exchange(rt.port, b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n").statuses == [400]
    smuggled = request("POST", PREDICT, [("Content-Length", "2"), ("Transfer-Encoding", "chunked")], b"{}")
    assert exchange(rt.port, smuggled).statuses == [400]
    assert exchange(rt.port, request("POST", PREDICT, [("Content-Length", "2000")])).statuses == [413]
    assert exchange(rt.port, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n").statuses == [431]
    assert exchange(rt.port, b"GET / HTTP/2.0\r\n\r\n").statuses == [505]
    assert exchange(rt.port, b"GET / HTTP/1.1\r\nHost: a\r\n", wait=10).statuses == [408]  # never finished
    samples = metric_samples(_metrics(rt))
    refused = {k: v for k, v in samples.items() if k.startswith("pack_requests_refused_total")}
    assert refused == {f'pack_requests_refused_total{{status="{s}"}}': n
                       for s, n in (("400", 2), ("408", 1), ("413", 1), ("431", 1), ("505", 1))}
    # None of them reached a route: the route counts hold only the readiness polls.
    routed = [k for k in samples if k.startswith("pack_requests_total")]
    assert routed and all(k.startswith('pack_requests_total{route="/v1/models/{name}"') for k in routed), routed


# --- the model's own metrics -------------------------------------------------------------------
CUSTOM_METRICS_MODEL = """
    from prometheus_client import Counter, Histogram

    PREDICTIONS = Counter("model_predictions", "Predictions made", ["kind"])
    CLASH = Counter("pack_requests", "A name the server's own metrics use")
    SIZES = Histogram("model_input_size", "Input sizes", buckets=[1, 10])


    class Model:
        def predict(self, inputs):
            PREDICTIONS.labels(kind="plain").inc()
            CLASH.inc()
            SIZES.observe(len(inputs))
            return inputs
"""


def test_the_models_prometheus_metrics_appear_as_truss_shows_them(tmp_path, runtimes):
    pytest.importorskip("prometheus_client")
    rt = runtimes(make_app(tmp_path, CUSTOM_METRICS_MODEL))
    rt.wait_ready()
    for _ in range(3):
        assert rt.predict({"a": 1, "b": 2})[0] == 200
    text = _metrics(rt)
    samples = metric_samples(text)
    assert samples['model_predictions_total{kind="plain"}'] == 3
    assert samples['model_input_size_bucket{le="10.0"}'] == 3
    assert "# TYPE model_predictions_total counter" in text
    # As in Truss: no _created series, no process/platform/GC collectors.
    assert "_created" not in text
    assert not re.search(r"^(process_|python_gc_|python_info)", text, re.MULTILINE)
    # A family named like the server's own is left out (two TYPE lines break the scrape), with a
    # warning; the server's own figures stay.
    assert text.count("# TYPE pack_requests_total ") == 1
    assert samples[f'pack_requests_total{{{ROUTE},status="200"}}'] == 3
    _metrics(rt)
    assert rt.logs().count("the model's metric pack_requests is not shown") == 1
    assert "pack_startup_stage_seconds" in text


def test_prometheus_client_is_not_imported_for_a_model_that_does_not(tmp_path, runtimes):
    pytest.importorskip("prometheus_client")  # installed, so only an import would bring it in
    rt = runtimes(make_app(tmp_path, """
        import sys


        class Model:
            def predict(self, inputs):
                return {"imported": "prometheus_client" in sys.modules}
    """))
    rt.wait_ready()
    text = _metrics(rt)
    assert rt.predict({})[1] == {"imported": False}
    assert "pack_requests_total" in text and "python_info" not in text


# --- tracing -----------------------------------------------------------------------------------
TRACED_MODEL = """
    import time

    from opentelemetry import trace

    from packager.runtime.serving import tracing


    class Model:
        def preprocess(self, inputs):
            return inputs

        def predict(self, inputs):
            if inputs.get("stream"):
                return self._stream()
            return {
                # Model code sees no span of the server's (Truss detaches them) ...
                "current_span_valid": trace.get_current_span().get_span_context().is_valid,
                # ... but chains' RPC gets the traceparent of the predict span.
                "traceparent": tracing.current_traceparent(),
            }

        def _stream(self):
            for i in range(3):
                time.sleep(0.1)
                yield f"{i};"

        def postprocess(self, outputs):
            return outputs
"""
INBOUND_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INBOUND_SPAN = "00f067aa0ba902b7"


def _traced_env(collector: OtlpCollector) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}


def test_spans_for_pre_predict_post_reach_the_otlp_endpoint_as_children_of_the_caller(tmp_path, runtimes):
    pytest.importorskip("opentelemetry.sdk")
    with OtlpCollector() as collector:
        rt = runtimes(make_app(tmp_path, TRACED_MODEL, config={"runtime": {"enable_tracing_data": True}}),
                      **_traced_env(collector))
        rt.wait_ready()
        status, out = rt.predict({}, headers={"traceparent": f"00-{INBOUND_TRACE}-{INBOUND_SPAN}-01"})
        assert status == 200, out
        spans = collector.wait_for({"predict-endpoint", "call-pre", "call-predict", "call-post"})
    by_name = {s.name: s for s in spans}
    endpoint = by_name["predict-endpoint"]
    assert endpoint.trace_id == INBOUND_TRACE and endpoint.parent_span_id == INBOUND_SPAN
    for name in ("call-pre", "call-predict", "call-post"):
        assert by_name[name].trace_id == INBOUND_TRACE
        assert by_name[name].parent_span_id == endpoint.span_id
        assert endpoint.start_ns <= by_name[name].start_ns <= by_name[name].end_ns <= endpoint.end_ns
    assert by_name["call-pre"].end_ns <= by_name["call-predict"].start_ns
    assert by_name["call-predict"].end_ns <= by_name["call-post"].start_ns
    assert endpoint.service_name == "truss-server"
    assert out["current_span_valid"] is False
    assert out["traceparent"] == f"00-{INBOUND_TRACE}-{by_name['call-predict'].span_id}-01"
    # Probes and /metrics are not traced.
    assert {s.name for s in spans} == {"predict-endpoint", "call-pre", "call-predict", "call-post"}


def test_a_streams_predict_span_lasts_until_the_stream_ends_and_failures_are_marked(tmp_path, runtimes):
    pytest.importorskip("opentelemetry.sdk")
    model = TRACED_MODEL.replace("def preprocess(self, inputs):\n            return inputs",
                                 "def preprocess(self, inputs):\n"
                                 "            if inputs.get('fail'):\n"
                                 "                raise ValueError('no')\n"
                                 "            return inputs")
    model = model.replace("        def postprocess(self, outputs):\n            return outputs\n", "")
    with OtlpCollector() as collector:
        rt = runtimes(make_app(tmp_path, model, config={"runtime": {"enable_tracing_data": True}}),
                      **_traced_env(collector))
        rt.wait_ready()
        status, _, body = rt.request("POST", PREDICT, {"stream": True})
        assert status == 200 and body == b"0;1;2;"
        assert rt.predict({"fail": True})[0] == 500
        collector.wait_for({"call-predict"})
        spans = collector.wait_for({"predict-endpoint", "call-pre"}, count=2)
    predict = next(s for s in spans if s.name == "call-predict")
    assert predict.end_ns - predict.start_ns >= 250_000_000  # three chunks, 0.1 s apart
    failed = [s for s in spans if s.name == "call-pre" and s.error]
    assert len(failed) == 1 and not predict.error


def test_a_chain_call_carries_the_trace_to_the_next_chainlet(tmp_path, runtimes):
    """Chains' RPC (a stub calling a deployed model) sends the predict span's traceparent: the
    callee's spans are its children, one trace across both servers."""
    pytest.importorskip("opentelemetry.sdk")
    with OtlpCollector() as collector:
        env = _traced_env(collector)
        tracing_on = {"runtime": {"enable_tracing_data": True}}
        callee = runtimes(make_app(tmp_path / "callee", """
            class Model:
                def predict(self, inputs):
                    return {"seen": inputs}
        """, config=tracing_on), OTEL_SERVICE_NAME="callee", **env)
        caller = runtimes(make_app(tmp_path / "caller", f"""
            from chains.rpc import StubBase


            class Model:
                def predict(self, inputs):
                    stub = StubBase.from_url("http://127.0.0.1:{callee.port}/v1/models/model:predict", None)
                    return stub.predict_sync(inputs)
        """, config=tracing_on), OTEL_SERVICE_NAME="caller", **env)
        callee.wait_ready()
        caller.wait_ready()
        status, out = caller.predict({"x": 1})
        assert status == 200 and out == {"seen": {"x": 1}}, out
        spans = collector.wait_for({"predict-endpoint", "call-predict"}, count=2)
    caller_predict = next(s for s in spans if s.name == "call-predict" and s.service_name == "caller")
    caller_endpoint = next(s for s in spans if s.name == "predict-endpoint" and s.service_name == "caller")
    callee_endpoint = next(s for s in spans if s.name == "predict-endpoint" and s.service_name == "callee")
    assert caller_endpoint.parent_span_id == ""  # the caller's request carried no trace
    assert callee_endpoint.trace_id == caller_endpoint.trace_id
    assert callee_endpoint.parent_span_id == caller_predict.span_id


def test_tracing_off_or_without_an_endpoint_exports_nothing_and_serves(tmp_path, runtimes):
    pytest.importorskip("opentelemetry.sdk")
    with OtlpCollector() as collector:
        off = runtimes(make_app(tmp_path / "off", TRACED_MODEL), **_traced_env(collector))
        no_endpoint = runtimes(make_app(tmp_path / "bare", TRACED_MODEL,
                                        config={"runtime": {"enable_tracing_data": True}}))
        for rt in (off, no_endpoint):
            rt.wait_ready()
            status, out = rt.predict({})
            assert status == 200 and out["traceparent"] is None
        status, out = off.predict({}, headers={"traceparent": f"00-{INBOUND_TRACE}-{INBOUND_SPAN}-01"})
        assert status == 200 and out["traceparent"] is None
        assert "no spans are exported" in no_endpoint.logs()
    assert collector.requests == 0


# --- logs --------------------------------------------------------------------------------------
LOGGING_MODEL = """
    import logging

    log = logging.getLogger("model")


    class Model:
        def predict(self, inputs):
            log.info("predicting %s", inputs["n"], extra={"customer": "acme"})
            try:
                1 / 0
            except ZeroDivisionError:
                log.exception("it failed, as planned")
            return inputs
"""


def test_log_lines_are_json_objects_as_truss_writes_them(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, LOGGING_MODEL))
    rt.wait_ready()
    assert rt.predict({"n": 7}, headers={"x-baseten-request-id": "req-42"})[0] == 200
    assert rt.predict({"crash": True})[0] == 500  # KeyError: the server logs the traceback
    records = rt.log_records()
    lines = [line for line in rt.logs().splitlines() if line.strip()]
    for line in lines:  # every line is one JSON object (the start-up timeline line included)
        assert isinstance(json.loads(line), dict), line
    for record in records:
        assert list(record)[:3] == ["asctime", "levelname", "message"]
    info = next(r for r in records if r["message"] == "predicting 7")
    assert info["levelname"] == "INFO" and info["customer"] == "acme" and info["request_id"] == "req-42"
    assert "exc_info" not in info
    planned = next(r for r in records if r["message"] == "it failed, as planned")
    assert planned["levelname"] == "ERROR" and planned["request_id"] == "req-42"
    assert planned["exc_info"].startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError: division by zero" in planned["exc_info"]
    crash = next(r for r in records if "exc_info" in r and "KeyError: 'n'" in r["exc_info"])
    assert crash["levelname"] == "ERROR" and "request_id" not in crash
    assert any(r["message"] == "model ready" for r in records)


def test_plain_text_logs_when_disable_json_logging_is_set(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, LOGGING_MODEL), DISABLE_JSON_LOGGING="1")
    rt.wait_ready()
    assert rt.predict({"n": 7})[0] == 200
    logs = rt.logs()
    assert rt.log_records() == []
    assert re.search(r"^\S+ \S+ INFO model: predicting 7$", logs, re.MULTILINE), logs
    assert re.search(r"^ZeroDivisionError: division by zero$", logs, re.MULTILINE)


def test_plain_text_on_a_terminal_json_elsewhere(monkeypatch):
    monkeypatch.delenv("DISABLE_JSON_LOGGING", raising=False)
    leader, follower = os.openpty()
    with open(follower, "w") as terminal, open(os.devnull, "w") as not_a_terminal:
        assert not log_format.json_logs(terminal)
        assert log_format.json_logs(not_a_terminal)
        monkeypatch.setenv("DISABLE_JSON_LOGGING", "1")
        assert not log_format.json_logs(not_a_terminal)
    os.close(leader)
