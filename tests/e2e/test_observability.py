"""The in-image server's observability in a real image: a truss that lists prometheus-client and
sets runtime.enable_tracing_data, built with real pip and run on the host network.

- /metrics shows the request metrics and the model's own prometheus_client counter.
- The plan installed the OpenTelemetry SDK (only because enable_tracing_data is set), and the
  spans reach an OTLP collector stand-in on 127.0.0.1, pre/predict/post under the endpoint span.
- The container's log lines are JSON objects with levelname and message.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from packager import runner
from packager.builder import BuildResult
from tests.e2e.conftest import Resources, build, start
from tests.fixtures.otlp_collector import OtlpCollector
from tests.fixtures.prometheus_text import samples as metric_samples

pytestmark = pytest.mark.docker

MODEL = """\
from prometheus_client import Counter

PREDICTIONS = Counter("e2e_predictions", "Predictions made", ["kind"])


class Model:
    def preprocess(self, model_input):
        return model_input

    def predict(self, model_input):
        PREDICTIONS.labels(kind="echo").inc()
        return model_input

    def postprocess(self, model_output):
        return model_output
"""
CONFIG = """\
model_name: e2e-observability
python_version: py311
requirements:
  - prometheus-client>=0.21
runtime:
  enable_tracing_data: true
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, e2e_env: pytest.MonkeyPatch,
          resources: Resources) -> Iterator[BuildResult]:
    root: Path = tmp_path_factory.mktemp("observability") / "truss"
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text(CONFIG)
    (root / "model" / "model.py").write_text(MODEL)
    yield build(root, resources.tag("observability"))


def test_metrics_spans_and_json_logs_from_a_built_image(built: BuildResult, resources: Resources) -> None:
    assert "opentelemetry-sdk>=1.25.0" in built.plan.sources.server_requirements
    with OtlpCollector() as collector:
        running = start(built, built.plan, resources, env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"})
        try:
            for i in range(3):
                assert runner.predict(running.url, {"i": i}, timeout=60) == {"i": i}
            with urllib.request.urlopen(running.url + "/metrics", timeout=30) as response:
                text = response.read().decode()
            spans = collector.wait_for({"predict-endpoint", "call-pre", "call-predict", "call-post"}, count=3)
            logs = running.container.logs()
        finally:
            running.container.remove()
    samples = metric_samples(text)
    assert samples['pack_requests_total{route="/v1/models/{name}:predict",status="200"}'] == 3
    assert samples['pack_request_duration_seconds_count{route="/v1/models/{name}:predict"}'] == 3
    assert samples["pack_predict_queue_wait_seconds_count"] == 3
    assert samples['e2e_predictions_total{kind="echo"}'] == 3

    endpoints = [s for s in spans if s.name == "predict-endpoint"]
    assert len(endpoints) == 3
    for endpoint in endpoints:
        children = {s.name for s in spans if s.parent_span_id == endpoint.span_id}
        assert children == {"call-pre", "call-predict", "call-post"}
        assert endpoint.service_name == "truss-server"

    records = []
    for line in logs.splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if "levelname" in doc:
                records.append(doc)
    assert any(r["message"] == "model ready" and r["levelname"] == "INFO" for r in records), logs
    assert any("exporting spans to" in r["message"] for r in records), logs
