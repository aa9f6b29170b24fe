"""A WebSocket model in a built image, end to end with a real engine and a real client: a Truss
model written against fastapi (unchanged: fastapi comes as one of Truss's server packages, the
protocol package with pack's server layer) echoes text and binary frames, sees the client's
close, and closes cleanly with 1000 when its websocket method returns."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from packager.runner import Running
from packager.runtime.serving.websocket import REQUIREMENT
from tests.e2e.conftest import Resources, build, exec_in, start

pytestmark = pytest.mark.docker

MODEL = """\
import fastapi


class Model:
    def __init__(self, **kwargs):
        self._sessions = 0

    async def websocket(self, websocket: fastapi.WebSocket) -> None:
        self._sessions += 1
        await websocket.send_text(f"session {self._sessions} q={websocket.query_params.get('q')}")
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    raise fastapi.WebSocketDisconnect(message["code"])
                if message.get("bytes") is not None:
                    await websocket.send_bytes(message["bytes"][::-1])
                elif message["text"] == "bye":
                    return  # the server closes with 1000
                else:
                    await websocket.send_text(message["text"].upper())
        except fastapi.WebSocketDisconnect as exc:
            print(f"client left with {exc.code}", flush=True)
"""
CONFIG = """\
model_name: e2e-websocket
python_version: py311
requirements: []
runtime:
  transport:
    kind: websocket
"""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, e2e_env: pytest.MonkeyPatch,
            resources: Resources) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("websocket") / "truss"
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text(CONFIG)
    (root / "model" / "model.py").write_text(MODEL)
    result = build(root, resources.tag("websocket"))
    assert REQUIREMENT in result.plan.sources.server_requirements
    assert "fastapi" in {p.distribution for p in result.plan.server_packages.packages}
    running = start(result, result.plan, resources)
    try:
        yield running
    finally:
        running.container.remove()


def _ws_url(running: Running, query: str = "") -> str:
    return running.url.replace("http://", "ws://") + "/v1/websocket" + (f"?q={query}" if query else "")


def test_frames_echo_and_the_session_closes_cleanly(running: Running, docker_client: Any) -> None:
    with connect(_ws_url(running, "a"), proxy=None, open_timeout=30) as ws:
        assert ws.recv(timeout=30) == "session 1 q=a"
        ws.send("hello")
        assert ws.recv(timeout=30) == "HELLO"
        ws.send(b"\x01\x02\x03")
        assert ws.recv(timeout=30) == b"\x03\x02\x01"
        ws.send(["frag", "ment"])
        assert ws.recv(timeout=30) == "FRAGMENT"
        ws.send("bye")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    assert closed.value.sent is not None and closed.value.sent.code == 1000  # the handshake completed

    with connect(_ws_url(running), proxy=None, open_timeout=30) as ws:  # the client closes this one
        assert ws.recv(timeout=30) == "session 2 q=None"
        ws.send("x")
        assert ws.recv(timeout=30) == "X"
        ws.close(4000)
    assert ws.close_code == 4000  # the server echoed the close: a clean closing handshake
    deadline = time.monotonic() + 30
    while "client left with 4000" not in running.container.logs():  # printed once the model saw it
        assert time.monotonic() < deadline, running.container.logs()
        time.sleep(0.1)

    version = exec_in(docker_client, running.container.name,
                      ["python3", "-c", "import websockets; print(websockets.__version__)"])
    assert tuple(int(p) for p in version.strip().split(".")[:2]) >= (13, 0)


def test_http_routes_around_it(running: Running) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(
            f"{running.url}/v1/models/model:predict", data=b"{}", headers={"Content-Type": "application/json"}),
            timeout=30)
    assert info.value.code == 404 and b"/v1/websocket" in info.value.read()
    with urllib.request.urlopen(f"{running.url}/v1/models/model", timeout=30) as ready:
        assert ready.status == 200
