"""The WebSocket protocol package in an image only when the model defines `websocket`: pack's
server layer gets it for a websocket model (before the user's requirements, so a user pin wins),
never for a predict model or a docker_server truss (whose server is the user's)."""

from __future__ import annotations

import json
from pathlib import Path

from packager.config import load_config
from packager.plan.build import plan_build
from packager.runtime.manifest import Manifest
from packager.runtime.serving.websocket import REQUIREMENT

WEBSOCKET_MODEL = "class Model:\n    async def websocket(self, ws):\n        await ws.send_text('hi')\n"
PREDICT_MODEL = "class Model:\n    def predict(self, x):\n        return x\n"
WEBSOCKET_RUNTIME = {"transport": {"kind": "websocket"}}


def _plan(root: Path, model: str, config: dict):
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    (root / "model" / "model.py").write_text(model)
    return plan_build(load_config(root), Manifest(()))


def test_only_a_websocket_model_gets_the_protocol_package(tmp_path: Path) -> None:
    websocket = _plan(tmp_path / "ws", WEBSOCKET_MODEL, {"model_name": "ws", "runtime": WEBSOCKET_RUNTIME})
    predict = _plan(tmp_path / "predict", PREDICT_MODEL, {"model_name": "p"})
    assert REQUIREMENT in websocket.sources.server_requirements
    assert not any("websockets" in line for line in predict.sources.server_requirements)
    assert [line for line in websocket.sources.server_requirements if line != REQUIREMENT] == \
        list(predict.sources.server_requirements)
    assert any("websocket" in note and REQUIREMENT in note for note in websocket.notes)


def test_a_user_pin_is_installed_after_it(tmp_path: Path) -> None:
    config = {"model_name": "ws", "runtime": WEBSOCKET_RUNTIME, "requirements": ["websockets==15.0.1"]}
    plan = _plan(tmp_path / "ws", WEBSOCKET_MODEL, config)
    assert REQUIREMENT in plan.sources.server_requirements  # pack's layer, installed first
    assert "websockets==15.0.1" in plan.requirements.lines  # the user's, installed after: it wins


def test_a_docker_server_truss_gets_nothing(tmp_path: Path) -> None:
    config = {"model_name": "d", "docker_server": {
        "start_command": "python -m http.server 8000", "server_port": 8000, "predict_endpoint": "/predict",
        "readiness_endpoint": "/health", "liveness_endpoint": "/health"}}
    plan = _plan(tmp_path / "docker", WEBSOCKET_MODEL, config)
    assert plan.docker_server is not None
    assert not any("websockets" in line for line in plan.sources.server_requirements)
