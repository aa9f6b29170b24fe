"""A request whose client has gone is skipped before each model method, so one queued behind
predict_concurrency never reaches predict (Truss's 499, logged); and the model sees the
disconnect itself through `await request.is_disconnected()` and Truss's
`request.state.watch_disconnect()`, with pack's request and with starlette's."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.runtime.harness import Runtime, make_app, runtime_importorskip

PREDICT = "/v1/models/model:predict"

QUEUE_MODEL = """
    import os
    import time

    calls = {}


    class Model:
        def __init__(self, **kwargs):
            self._marks = os.environ["MARKS"]

        def predict(self, inputs):
            tag = inputs["tag"]
            if tag == "calls":
                return calls
            calls[tag] = calls.get(tag, 0) + 1
            if inputs.get("hold"):  # keep the only permit until the test opens the gate
                open(os.path.join(self._marks, "holding"), "w").close()
                gate = os.path.join(self._marks, "gate")
                deadline = time.monotonic() + 30
                while not os.path.exists(gate) and time.monotonic() < deadline:
                    time.sleep(0.01)
            return {"ran": tag}
"""


def _wait_for(path: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def _send(rt: Runtime, body: dict) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", rt.port), timeout=30)
    data = json.dumps(body).encode()
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (PREDICT.encode(), len(data), data))
    return sock


def test_a_queued_request_whose_client_left_never_reaches_predict(tmp_path, runtimes):
    marks = tmp_path / "marks"
    marks.mkdir()
    rt = runtimes(make_app(tmp_path, QUEUE_MODEL, config={"runtime": {"predict_concurrency": 1}}),
                  MARKS=str(marks))
    rt.wait_ready()
    holder: list = []
    thread = threading.Thread(target=lambda: holder.append(rt.predict({"tag": "holder", "hold": True})))
    thread.start()
    _wait_for(marks / "holding")
    gone = _send(rt, {"tag": "gone"})  # queued behind the holder
    stays = _send(rt, {"tag": "stays"})  # queued too, and still waiting for its answer
    time.sleep(0.3)  # both requests read and waiting for the permit
    gone.close()
    time.sleep(0.3)  # the server has seen the close
    (marks / "gate").write_text("open")
    thread.join(30)
    assert holder == [(200, {"ran": "holder"})]
    answer = http.client.HTTPResponse(stays)
    answer.begin()
    assert (answer.status, json.loads(answer.read())) == (200, {"ran": "stays"})
    stays.close()
    assert rt.predict({"tag": "calls"}) == (200, {"holder": 1, "stays": 1})  # "gone" never ran
    assert "Client disconnected, skipping `predict`." in rt.logs()


DISCONNECT_MODEL = """
    {imports}
    import asyncio
    import json
    import os


    class Model:
        def __init__(self, **kwargs):
            self._marks = os.environ["MARKS"]

        def _mark(self, name, text):
            path = os.path.join(self._marks, name)
            with open(path + ".tmp", "w") as fh:
                fh.write(text)
            os.replace(path + ".tmp", path)

        async def predict(self, inputs, request: {annotation}):
            if inputs["how"] == "poll":
                connected = not await request.is_disconnected()
                body = await request.body()  # still there after is_disconnected() took a message
                self._mark("started", json.dumps([connected, json.loads(body)]))
                for _ in range(600):
                    if await request.is_disconnected():
                        self._mark("seen", "poll")
                        return {{"seen": True}}
                    await asyncio.sleep(0.05)
                return {{"seen": False}}
            body = await request.body()  # the body is there, also when asked after is_disconnected()
            return await asyncio.get_running_loop().run_in_executor(None, self._watch, request, body)

        def _watch(self, request, body):
            # Truss's way for sync code in a thread: a threading.Event set on the disconnect.
            with request.state.watch_disconnect() as disconnected:
                self._mark("started", body.decode())
                if disconnected.wait(30):
                    self._mark("seen", "watch")
            return {{"seen": disconnected.is_set()}}
"""

REQUEST_KINDS = {
    "pack": ("from __future__ import annotations", "Request"),
    "starlette": ("import starlette.requests", "starlette.requests.Request"),
}


@pytest.mark.parametrize("kind", sorted(REQUEST_KINDS))
@pytest.mark.parametrize("how", ["poll", "watch"])
def test_the_model_sees_its_client_disconnect(tmp_path, runtimes, kind, how):
    if kind == "starlette":
        runtime_importorskip("starlette")
    imports, annotation = REQUEST_KINDS[kind]
    marks = tmp_path / "marks"
    marks.mkdir()
    code = DISCONNECT_MODEL.format(imports=imports, annotation=annotation)
    rt = runtimes(make_app(tmp_path, code), MARKS=str(marks))
    rt.wait_ready()
    sock = _send(rt, {"how": how})
    _wait_for(marks / "started")
    if how == "poll":
        assert json.loads((marks / "started").read_text()) == [True, {"how": "poll"}]
    else:
        assert json.loads((marks / "started").read_text()) == {"how": "watch"}
    sock.close()
    _wait_for(marks / "seen")
    assert (marks / "seen").read_text() == how
