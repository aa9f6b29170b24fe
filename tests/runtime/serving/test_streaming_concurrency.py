"""Streaming generators (sync and async, failures before and during the stream), the JSON
gathering rule, and predict_concurrency as a limit on predict only."""

from __future__ import annotations

import http.client
import threading
import time

import pytest

from tests.runtime.harness import Runtime, make_app

MODEL = """
    import asyncio
    import threading
    import time

    _lock = threading.Lock()
    _state = {"running": 0, "peak": 0}


    class Model:
        def preprocess(self, inputs):
            return inputs

        def predict(self, inputs):
            mode = inputs.get("mode")
            if mode == "sync":
                return self._sync(inputs.get("n", 3))
            if mode == "async":
                return self._async(inputs.get("n", 3))
            if mode == "fail_mid":
                return self._fail_mid()
            if mode == "fail_first":
                return self._fail_first()
            if mode == "slow":
                return self._slow(inputs["sleep"])
            if mode == "peak":
                return dict(_state)
            with _lock:
                _state["running"] += 1
                _state["peak"] = max(_state["peak"], _state["running"])
            time.sleep(inputs.get("sleep", 0.0))
            with _lock:
                _state["running"] -= 1
            return {"ok": True}

        def _sync(self, n):
            for i in range(n):
                yield f"chunk-{i};"

        async def _async(self, n):
            for i in range(n):
                await asyncio.sleep(0.01)
                yield f"a{i};".encode()

        def _fail_mid(self):
            yield "first;"
            yield "second;"
            raise RuntimeError("generator broke mid-stream")

        def _fail_first(self):
            raise RuntimeError("generator broke at once")
            yield "never"

        def _slow(self, seconds):
            yield "start;"
            time.sleep(seconds)
            yield "end;"
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("stream"), MODEL, config={"runtime": {"predict_concurrency": 2}})
    rt = Runtime(app).start()
    rt.wait_ready()
    yield rt
    rt.kill()


def _stream(rt: Runtime, body: dict, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", rt.port, timeout=30)
    import json
    conn.request("POST", "/v1/models/model:predict", body=json.dumps(body), headers=headers or {})
    return conn, conn.getresponse()


def test_sync_generator_streams_chunked_octet_stream(served):
    conn, resp = _stream(served, {"mode": "sync", "n": 4})
    assert resp.status == 200
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.getheader("Content-Type") == "application/octet-stream"
    assert resp.read() == b"chunk-0;chunk-1;chunk-2;chunk-3;"
    conn.close()


def test_async_generator_streams(served):
    conn, resp = _stream(served, {"mode": "async", "n": 3})
    assert resp.read() == b"a0;a1;a2;"
    conn.close()


def test_exception_mid_stream_aborts_the_response(served):
    conn, resp = _stream(served, {"mode": "fail_mid"})
    assert resp.status == 200
    with pytest.raises((http.client.IncompleteRead, ConnectionError)) as info:
        resp.read()
    if isinstance(info.value, http.client.IncompleteRead):
        assert b"first;" in info.value.partial
    conn.close()
    assert "generator broke mid-stream" in served.logs()
    assert served.request("GET", "/v1/models/model")[0] == 200  # the server keeps serving


def test_exception_before_the_first_chunk_aborts_the_stream_already_started(served):
    # The status goes out before the first chunk (as Truss's does), so a generator that fails at
    # once ends the stream like a failure mid-way: aborted, no terminating chunk.
    conn, resp = _stream(served, {"mode": "fail_first"})
    assert resp.status == 200
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        resp.read()
    conn.close()
    assert "generator broke at once" in served.logs()


def test_exception_in_a_gathered_stream_is_a_500(served):
    status, _, body = served.request("POST", "/v1/models/model:predict", {"mode": "fail_first"},
                                     headers={"Accept": "application/json"})
    assert status == 500
    assert body == b'{"error": "Internal Server Error (in model/chainlet)."}'


def test_accept_json_gathers_the_stream_unless_the_client_is_openai(served):
    status, body = served.json("POST", "/v1/models/model:predict", {"mode": "sync", "n": 2},
                               headers={"Accept": "application/json"})
    assert (status, body) == (200, "chunk-0;chunk-1;")
    conn, resp = _stream(served, {"mode": "sync", "n": 2},
                         {"Accept": "application/json", "User-Agent": "OpenAI/Python 1.0"})
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.read() == b"chunk-0;chunk-1;"
    conn.close()


def _parallel(rt: Runtime, bodies: list[dict]) -> list[tuple[int, object]]:
    results: list = [None] * len(bodies)

    def one(i: int) -> None:
        results[i] = rt.predict(bodies[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_predict_concurrency_limits_parallel_predicts(served):
    started = time.monotonic()
    results = _parallel(served, [{"sleep": 0.4}] * 6)
    elapsed = time.monotonic() - started
    assert all(r == (200, {"ok": True}) for r in results)
    assert served.predict({"mode": "peak"})[1]["peak"] == 2
    assert elapsed >= 1.1  # 6 requests, 2 at a time, 0.4 s each: three waves


def test_a_stream_holds_its_permit_until_the_generator_ends(served):
    # Two slow streams take both permits; a plain predict must wait until one generator ends.
    conns = [_stream(served, {"mode": "slow", "sleep": 1.0}) for _ in range(2)]
    for _, resp in conns:
        assert resp.read(6) == b"start;"
    started = time.monotonic()
    assert served.predict({"sleep": 0.0}) == (200, {"ok": True})
    assert time.monotonic() - started >= 0.5
    for conn, resp in conns:
        assert resp.read() == b"end;"
        conn.close()
