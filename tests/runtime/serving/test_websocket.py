"""Model.websocket at /v1/websocket: a real runtime process and a real WebSocket client (the
`websockets` package), in both shapes the model can get: starlette's WebSocket (the model imports
starlette, as Truss models import fastapi) and the runtime's own (starlette not importable)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Opcode
from websockets.sync.client import connect
from websockets.uri import parse_uri

from packager import constants
from packager.runtime.serving.http_errors import MODEL_ERROR_MESSAGE
from tests.runtime.harness import REPO_ROOT, free_port, make_app

MODEL = """
    import asyncio

    try:
        from starlette.websockets import WebSocket, WebSocketDisconnect
    except ImportError:  # the runtime's own WebSocket raises its own WebSocketDisconnect
        from packager.runtime.serving.websocket import RuntimeWebSocket as WebSocket
        from packager.runtime.serving.websocket import WebSocketDisconnect


    class Model:
        def __init__(self, **kwargs):
            pass

        async def websocket(self, ws: "WebSocket") -> None:
            print(f"MODEL ws-class={type(ws).__module__} query={ws.query_params.get('q')} "
                  f"header={ws.headers.get('x-test')}", flush=True)
            try:
                while True:
                    message = await ws.receive()
                    if message["type"] == "websocket.disconnect":
                        raise WebSocketDisconnect(message["code"], message.get("reason"))
                    text = message.get("text")
                    if text is None:
                        data = message["bytes"]
                        await (ws.send_text(f"{len(data)} bytes") if len(data) > 65536 else ws.send_bytes(data))
                    elif text == "return":
                        return
                    elif text == "raise":
                        raise ValueError("model failed on purpose")
                    elif text.startswith("close:"):
                        _, code, reason = text.split(":", 2)
                        await ws.close(int(code), reason)
                        return
                    elif text == "json":
                        await ws.send_json({"ok": True, "text": "é"})
                    elif text == "accept":
                        await ws.accept()
                    elif text == "wait":
                        await asyncio.sleep(3600)
                    else:
                        await ws.send_text(text)
            except WebSocketDisconnect as exc:
                print(f"MODEL disconnect code={exc.code}", flush=True)
                if exc.code != 4000:
                    raise  # the server logs that the client left
                await ws.close()  # a common pattern: closing what the client closed is quiet
                print("MODEL closed after the client", flush=True)
"""

PREDICT_MODEL = "class Model:\n    def predict(self, inputs):\n        return inputs\n"

SLOW_LOAD = """
    import time

    class Model:
        def load(self):
            time.sleep(30)

        async def websocket(self, ws):
            await ws.send_text("never")
"""


@pytest.fixture(params=["starlette", "runtime"])
def mode(request, tmp_path):
    """'starlette': the model gets starlette's WebSocket; 'runtime': starlette cannot be imported."""
    if request.param == "starlette":
        return {}
    blocker = tmp_path / "no-starlette" / "starlette"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('starlette is blocked for this test')\n")
    return {"PYTHONPATH": f"{blocker.parent}:{REPO_ROOT}"}


def _url(rt, query: str = "") -> str:
    return f"ws://127.0.0.1:{rt.port}/v1/websocket" + (f"?{query}" if query else "")


def _open(rt, query: str = "", **kwargs):
    kwargs.setdefault("open_timeout", 10)
    return connect(_url(rt, query), proxy=None, **kwargs)


def _closed(ws) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=10)
    return info.value


def _ready(runtimes, tmp_path, code: str = MODEL, **env: str):
    rt = runtimes(make_app(tmp_path, code), **env)
    rt.wait_ready()
    return rt


def _close_after(rt, text: str | None) -> tuple[int, str]:
    """Send `text` (if any) on a new connection; the code and reason of the server's close."""
    with _open(rt) as ws:
        if text is not None:
            ws.send(text)
        closed = _closed(ws)
    assert closed.rcvd is not None, closed
    return closed.rcvd.code, closed.rcvd.reason


def _wait_for(rt, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = rt.logs()
        if text in logs:
            return logs
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in the log:\n{rt.logs()}")


def test_frames_echo_and_a_returning_model_closes_with_1000(tmp_path, runtimes, mode):
    rt = _ready(runtimes, tmp_path, **mode)
    with _open(rt, "q=42", additional_headers={"X-Test": "yes"}) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send(b"\x00\x01\xff")
        assert ws.recv(timeout=10) == b"\x00\x01\xff"
        ws.send(["frag", "mented ", "ünïcode"])  # one message in three frames
        assert ws.recv(timeout=10) == "fragmented ünïcode"
        ws.send("json")
        assert json.loads(ws.recv(timeout=10)) == {"ok": True, "text": "é"}
        ws.send("return")
        closed = _closed(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1000
    expected = "starlette.websockets" if not mode else "packager.runtime.serving.websocket"
    assert f"MODEL ws-class={expected} query=42 header=yes" in rt.logs()


def test_the_model_closes_with_its_own_code_and_reason(tmp_path, runtimes, mode):
    rt = _ready(runtimes, tmp_path, **mode)
    assert _close_after(rt, "close:4001:goodbye") == (4001, "goodbye")


def test_an_exception_closes_with_1011_and_is_logged(tmp_path, runtimes, mode):
    rt = _ready(runtimes, tmp_path, **mode)
    assert _close_after(rt, "raise") == (1011, MODEL_ERROR_MESSAGE)
    logs = rt.logs()
    assert "ValueError: model failed on purpose" in logs and "Traceback" in logs
    with _open(rt) as ws:  # the server goes on serving
        ws.send("again")
        assert ws.recv(timeout=10) == "again"


def test_accepting_again_is_an_error_as_in_starlette(tmp_path, runtimes, mode):
    rt = _ready(runtimes, tmp_path, **mode)
    assert _close_after(rt, "accept")[0] == 1011
    assert "RuntimeError" in rt.logs()


def test_a_client_close_and_a_dropped_connection_reach_the_model(tmp_path, runtimes, mode):
    rt = _ready(runtimes, tmp_path, **mode)
    with _open(rt) as ws:
        ws.send("ping")
        assert ws.recv(timeout=10) == "ping"
        ws.close(code=4000, reason="client done")
    _wait_for(rt, "MODEL closed after the client")


    with _open(rt) as ws:
        ws.send("ping")
        assert ws.recv(timeout=10) == "ping"
        ws.socket.shutdown(socket.SHUT_RDWR)  # gone without a close frame
        _wait_for(rt, "MODEL disconnect code=1006")
    _wait_for(rt, "Client terminated websocket connection")
    assert "ERROR" not in rt.logs()


LOGGING_MODEL = """
    import logging

    log = logging.getLogger("model")


    class Model:
        async def websocket(self, ws):
            text = await ws.receive_text()
            log.info("ws got %s", text)
            await ws.send_text(text)
            if text == "fail":
                raise ValueError("failed on purpose")
"""


def test_websocket_log_lines_carry_the_request_id_as_http_ones_do(tmp_path, runtimes):
    rt = _ready(runtimes, tmp_path, LOGGING_MODEL)
    ids = {"x-baseten-request-id": "ws-42", "x-baseten-chain-request-id": "chain-7"}
    with _open(rt, additional_headers=ids) as ws:
        ws.send("fail")
        assert ws.recv(timeout=10) == "fail"
        assert _closed(ws).rcvd.code == 1011
    with _open(rt) as ws:  # no ids sent: none shown, none left over from the session before
        ws.send("plain")
        assert ws.recv(timeout=10) == "plain"
    _wait_for(rt, "ws got plain")
    records = rt.log_records()
    got = next(r for r in records if r["message"] == "ws got fail")
    assert (got["request_id"], got["chain_request_id"]) == ("ws-42", "chain-7")
    failed = next(r for r in records if "`websocket` raised" in r["message"])  # the server's own line
    assert failed["request_id"] == "ws-42" and "ValueError: failed on purpose" in failed["exc_info"]
    plain = next(r for r in records if r["message"] == "ws got plain")
    assert "request_id" not in plain and "chain_request_id" not in plain


def test_messages_up_to_the_limit_pass_and_a_larger_one_closes_with_1009(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, MODEL), **{constants.PACK_WS_MAX_MESSAGE_BYTES: "100000"})
    rt.wait_ready()
    with _open(rt, max_size=None, compression=None) as ws:
        ws.send(b"x" * 100_000)
        assert ws.recv(timeout=10) == "100000 bytes"
        ws.send([b"y" * 60_000, b"y" * 40_001])  # over the limit across two fragments
        closed = _closed(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1009
    _wait_for(rt, "MODEL disconnect code=1009")


def test_the_default_limit_is_trusss_100_mib(tmp_path, runtimes):
    rt = _ready(runtimes, tmp_path)
    limit = 100 * (1 << 20)
    chunk = b"z" * (1 << 20)
    with _open(rt, max_size=None, compression=None) as ws:
        ws.send([chunk] * 100)
        assert ws.recv(timeout=60) == f"{limit} bytes"
        ws.send([chunk] * 100 + [b"!"])
        closed = _closed(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1009


def test_sessions_past_the_cap_are_refused_with_503(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, MODEL), **{constants.PACK_WS_MAX_SESSIONS: "2"})
    rt.wait_ready()
    with _open(rt) as first, _open(rt) as second:
        with pytest.raises(InvalidStatus) as refused:
            _open(rt)
        assert refused.value.response.status_code == 503
        assert refused.value.response.headers["Retry-After"] == "1"
        first.close()
        deadline = time.monotonic() + 10
        while True:  # the slot frees once the first session has ended on the server
            try:
                third = _open(rt)
                break
            except InvalidStatus:
                assert time.monotonic() < deadline, "the closed session's slot never freed"
                time.sleep(0.05)
        with third:
            third.send("three")
            assert third.recv(timeout=10) == "three"
        second.send("two")
        assert second.recv(timeout=10) == "two"
    assert "refused 1 WebSocket session(s)" in rt.logs()


def test_keepalive_pings_fail_a_silent_client_with_1011(tmp_path, runtimes):
    transport = {"kind": "websocket", "ping_interval_seconds": 0.2, "ping_timeout_seconds": 0.3}
    rt = runtimes(make_app(tmp_path, MODEL, config={"runtime": {"predict_concurrency": 1,
                                                               "transport": transport}}))
    rt.wait_ready()
    with _open(rt) as ws:  # a client that answers pings stays connected past several intervals
        time.sleep(1.0)
        ws.send("still here")
        assert ws.recv(timeout=10) == "still here"

    # A client that never answers: the sans-I/O client protocol queues pongs; they are never sent.
    client = ClientProtocol(parse_uri(_url(rt)))
    with socket.create_connection(("127.0.0.1", rt.port), timeout=10) as sock:
        client.send_request(client.connect())
        for data in client.data_to_send():
            sock.sendall(data)
        opcodes = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            client.receive_data(data)
            opcodes += [e.opcode for e in client.events_received() if hasattr(e, "opcode")]
    assert Opcode.PING in opcodes and Opcode.CLOSE in opcodes
    assert client.close_rcvd is not None and client.close_rcvd.code == 1011
    _wait_for(rt, "MODEL disconnect code=1011")


def test_sigterm_closes_open_sessions_with_1012(tmp_path, runtimes):
    rt = _ready(runtimes, tmp_path)
    with _open(rt) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        outcome: dict[str, object] = {}

        def read() -> None:
            try:
                ws.recv(timeout=20)
            except ConnectionClosed as exc:
                outcome["code"] = exc.rcvd.code if exc.rcvd else None

        reader = threading.Thread(target=read)
        reader.start()
        assert rt.stop(timeout=20) == 0
        reader.join(20)
    assert outcome.get("code") == 1012
    assert "MODEL disconnect code=1012" in rt.logs()


def test_a_predict_model_accepts_then_closes_with_1003(tmp_path, runtimes):
    rt = _ready(runtimes, tmp_path, PREDICT_MODEL)
    assert _close_after(rt, None) == (1003, "WebSocket is not implemented on this deployment.")


def test_routes_around_the_websocket(tmp_path, runtimes):
    rt = _ready(runtimes, tmp_path)
    status, _, body = rt.request("GET", "/v1/websocket")  # a plain GET, as under Truss
    assert status == 404, body
    status, doc = rt.predict({"x": 1})
    assert status == 404 and "/v1/websocket" in doc["error"]
    # A broken handshake gets the protocol's own answer (no upgrade), not a model call.
    status, _, body = rt.request("GET", "/v1/websocket", headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"})
    assert status == 400 and b"Sec-WebSocket-Key" in body


def test_until_the_model_is_loaded_the_upgrade_gets_503(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, SLOW_LOAD))
    rt.wait_listening()
    with pytest.raises(InvalidStatus) as refused:
        _open(rt)
    assert refused.value.response.status_code == 503


def test_the_runtime_imports_no_websocket_package_for_a_predict_model(tmp_path, runtimes):
    code = """
        import sys

        class Model:
            def predict(self, inputs):
                return sorted(m for m in sys.modules if m.split(".")[0] in ("websockets", "starlette"))
    """
    rt = runtimes(make_app(tmp_path, code))
    rt.wait_ready()
    assert rt.predict({}) == (200, [])


def test_the_load_enforces_the_rules_pack_check_states(tmp_path, runtimes):
    """Each rule `pack check` states is also what the runtime enforces at load."""
    cases = {
        "sync": "class Model:\n    def websocket(self, ws):\n        pass\n",
        "arity": "class Model:\n    async def websocket(self, ws, extra):\n        pass\n",
        "both": "class Model:\n    def predict(self, x):\n        return x\n\n"
                "    async def websocket(self, ws):\n        pass\n",
    }
    expected = {"sync": "must be an `async def`", "arity": "exactly one argument",
                "both": "defines `websocket` and `predict`"}
    for name, code in cases.items():
        rt = runtimes(make_app(Path(tmp_path) / name, code))
        assert rt.wait_exit(30) == 1
        assert expected[name] in rt.logs(), rt.logs()


USER_SERVER = """
    import asyncio, sys
    from http import HTTPStatus

    from websockets.asyncio.server import serve


    async def echo(ws):
        await ws.send(f"path={ws.request.path}")
        async for message in ws:
            await ws.send(message)


    def health(connection, request):
        if request.path.startswith("/health"):
            return connection.respond(HTTPStatus.OK, "ok\\n")


    async def main():
        async with serve(echo, "127.0.0.1", int(sys.argv[1]), process_request=health):
            await asyncio.get_running_loop().create_future()

    asyncio.run(main())
"""


def test_docker_server_websockets_are_tunnelled_to_the_predict_endpoint(tmp_path, runtimes):
    port = free_port()
    config = {"docker_server": {"start_command": f"{sys.executable} data/server.py {port}", "server_port": port,
                                "predict_endpoint": "/ws", "readiness_endpoint": "/health/ready",
                                "liveness_endpoint": "/health/live"}}
    rt = runtimes(make_app(tmp_path, None, config=config, files={"data/server.py": USER_SERVER}))
    rt.wait_ready()
    with _open(rt, "x=1") as ws:
        assert ws.recv(timeout=10) == "path=/ws?x=1"  # Truss's nginx rewrite, query kept
        ws.send("through the proxy")
        assert ws.recv(timeout=10) == "through the proxy"
        ws.send(b"\x01\x02")
        assert ws.recv(timeout=10) == b"\x01\x02"
    assert ws.close_code == 1000
