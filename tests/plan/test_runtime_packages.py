"""What the runtime itself needs in an image, planned only for trusses that use it: the
OpenTelemetry SDK when runtime.enable_tracing_data is set (never for docker_server trusses, whose
server is the user's)."""

from __future__ import annotations

import json
from pathlib import Path

from packager.config import load_config
from packager.plan.build import plan_build
from packager.runtime.manifest import Manifest
from packager.runtime.serving.tracing import SDK_REQUIREMENTS

MODEL = "class Model:\n    def predict(self, x):\n        return x\n"
# A docker_server truss (JSON is YAML): the user's server, where pack's model server is not.
DOCKER_SERVER = json.dumps({"docker_server": {
    "start_command": "python -m http.server 8000", "server_port": 8000, "predict_endpoint": "/predict",
    "readiness_endpoint": "/health", "liveness_endpoint": "/health"}})


def _plan(root: Path, config: str):
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(config)
    (root / "model").mkdir()
    (root / "model" / "model.py").write_text(MODEL)
    return plan_build(load_config(root), Manifest(()))


def test_the_tracing_sdk_comes_only_with_enable_tracing_data(tmp_path: Path) -> None:
    traced = _plan(tmp_path / "traced", "model_name: t\nruntime:\n  enable_tracing_data: true\n")
    plain = _plan(tmp_path / "plain", "model_name: p\n")
    assert traced.sources.server_requirements[-len(SDK_REQUIREMENTS):] == SDK_REQUIREMENTS
    assert not set(SDK_REQUIREMENTS) & set(plain.sources.server_requirements)
    # Everything else pack's server layer holds is the same.
    assert traced.sources.server_requirements[:-len(SDK_REQUIREMENTS)] == plain.sources.server_requirements


def test_docker_server_trusses_get_no_tracing_sdk(tmp_path: Path) -> None:
    config = json.loads(DOCKER_SERVER) | {"model_name": "d", "runtime": {"enable_tracing_data": True}}
    plan = _plan(tmp_path / "docker", json.dumps(config))
    assert plan.docker_server is not None
    assert not set(SDK_REQUIREMENTS) & set(plan.sources.server_requirements)
