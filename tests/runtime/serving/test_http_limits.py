"""The in-image server's timeouts and limits (packager/runtime/serving/http_limits.py), each set
short through its environment override: slowloris heads and idle keep-alive connections are
closed; a stalled upload times out, a slow one does not; the connection cap under a low
open-files limit keeps predict answering without an accept-error storm in the log; SIGTERM
with a stalled upload exits after the upload's drain timeout, not PACK_SHUTDOWN_TIMEOUT; request
bodies are bounded one by one (413) and together (503); a response, streamed or not, whose client
stops reading is cut off after the send timeout."""

from __future__ import annotations

import json
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from packager import constants
from tests.runtime.harness import Runtime, make_app
from tests.runtime.serving import raw_http
from tests.runtime.serving.raw_http import exchange, read_response, request

PREDICT = "/v1/models/model:predict"
MODEL = """
    class Model:
        def predict(self, model_input):
            return model_input
"""
PARTIAL_HEAD = f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()


def post_head(length: int, extra: str = "") -> bytes:
    return f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n{extra}\r\n".encode()


def read_until_closed(sock: socket.socket, wait: float) -> tuple[bytes, bool]:
    """What the server sends until it closes (True) or `wait` s pass (False)."""
    data, closed, _ = raw_http.read_until_closed(sock, wait)
    return data, closed


@contextmanager
def partial_heads(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections that each sent the start of a head, and nothing more."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(PARTIAL_HEAD)
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def wait_for_log(rt: Runtime, text: str, timeout: float = 10.0) -> str:
    """The log once it holds `text` (the limits' summary is written once per sweep interval)."""
    deadline = time.monotonic() + timeout
    while text not in rt.logs():
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{rt.logs()}"
        time.sleep(0.1)
    return rt.logs()


def assert_serving(rt: Runtime) -> None:
    assert rt.predict({"still": "serving"}, timeout=20) == (200, {"still": "serving"})
    assert "Traceback" not in rt.logs(), rt.logs()


def test_slowloris_heads_are_closed_with_408(tmp_path):
    app = make_app(tmp_path, MODEL)
    with Runtime(app, **{constants.PACK_HTTP_HEAD_TIMEOUT: "1"}) as rt:
        rt.wait_ready()
        trickling = [socket.create_connection(("127.0.0.1", rt.port)) for _ in range(20)]
        silent = socket.create_connection(("127.0.0.1", rt.port))
        try:
            for sock in trickling:
                sock.sendall(PARTIAL_HEAD)
            answers: dict[socket.socket, tuple[bytes, bool]] = {}
            for _ in range(40):  # a header line every 0.25 s: each connection makes progress
                readable, _, _ = select.select([*trickling, silent], [], [], 0.25)
                for sock in readable:
                    answers.setdefault(sock, read_until_closed(sock, 5))
                if len(answers) == len(trickling) + 1:
                    break
                for sock in trickling:
                    if sock not in answers:
                        sock.sendall(b"X-Slow: 1\r\n")
            assert len(answers) == len(trickling) + 1
            for answer, was_closed in answers.values():
                assert was_closed and answer.startswith(b"HTTP/1.1 408 "), answer
        finally:
            for sock in [*trickling, silent]:
                sock.close()
        assert_serving(rt)


def test_an_idle_keep_alive_connection_is_closed_and_an_active_one_kept(tmp_path):
    app = make_app(tmp_path, MODEL)
    with Runtime(app, **{constants.PACK_HTTP_KEEPALIVE_TIMEOUT: "1"}) as rt:
        rt.wait_ready()
        with socket.create_connection(("127.0.0.1", rt.port)) as sock:
            for i in range(8):  # 2.4 s of requests 0.3 s apart on one connection: never idle 1 s
                sock.sendall(post_head(8) + b'{"a": 1}')
                answer = read_response(sock)
                assert answer.startswith(b"HTTP/1.1 200 "), (i, answer)
                time.sleep(0.3)
            answer, was_closed = read_until_closed(sock, 10)
            assert was_closed and answer == b""  # idle: closed without a response
        assert_serving(rt)


def test_a_stalled_body_times_out_and_a_slow_one_does_not(tmp_path):
    app = make_app(tmp_path, MODEL)
    with Runtime(app, **{constants.PACK_HTTP_BODY_TIMEOUT: "1"}) as rt:
        rt.wait_ready()
        stalled = exchange(rt.port, post_head(100) + b'{"a": ', wait=10)
        assert stalled.statuses == [408] and stalled.closed
        body = b'{"slow": 1}'
        slow = exchange(rt.port, [post_head(len(body))] + [bytes([b]) for b in body], wait=10, pause=0.3)
        assert slow.statuses == [200] and body in slow.data
        assert_serving(rt)


def test_sigterm_with_a_stalled_upload_exits_after_the_upload_drain_timeout(tmp_path):
    app = make_app(tmp_path, MODEL)
    env = {constants.PACK_HTTP_SHUTDOWN_UPLOAD_TIMEOUT: "1", constants.PACK_HTTP_BODY_TIMEOUT: "600",
           constants.PACK_SHUTDOWN_TIMEOUT: "600"}
    with Runtime(app, **env) as rt:
        rt.wait_ready()
        with socket.create_connection(("127.0.0.1", rt.port)) as upload:
            upload.sendall(post_head(1_000_000) + b"x" * 1000)
            time.sleep(0.3)  # the server is reading the body
            assert rt.proc is not None
            started = time.monotonic()
            rt.proc.send_signal(signal.SIGTERM)
            assert rt.wait_exit(30) == 0
            # Far below the 600 s the body timeout and PACK_SHUTDOWN_TIMEOUT would allow.
            assert time.monotonic() - started < 30
            answer, was_closed = read_until_closed(upload, 5)
            assert was_closed and answer.startswith(b"HTTP/1.1 503 "), answer
        assert "Traceback" not in rt.logs(), rt.logs()


def test_sigterm_still_waits_for_a_running_predict(tmp_path):
    """The upload drain timeout cuts uploads only: a request already in predict finishes."""
    model = """
        import time


        class Model:
            def predict(self, model_input):
                time.sleep(model_input["sleep"])
                return {"slept": model_input["sleep"]}
    """
    app = make_app(tmp_path, model)
    with Runtime(app, **{constants.PACK_HTTP_SHUTDOWN_UPLOAD_TIMEOUT: "0.1"}) as rt:
        rt.wait_ready()
        result: list[tuple[int, object]] = []
        worker = threading.Thread(target=lambda: result.append(rt.predict({"sleep": 2})))
        worker.start()
        time.sleep(0.5)
        assert rt.stop(signal.SIGTERM, timeout=30) == 0
        worker.join(30)
        assert result == [(200, {"slept": 2})]


def test_request_bodies_are_bounded_one_by_one_and_together(tmp_path):
    app = make_app(tmp_path, MODEL)
    env = {constants.PACK_HTTP_MAX_BODY_BYTES: "1000000", constants.PACK_HTTP_BODY_MEMORY_BYTES: "1500000"}
    with Runtime(app, **env) as rt:
        rt.wait_ready()
        # Over the per-request limit: 413 at once, without the 100 Continue that would ask for it.
        too_large = exchange(rt.port, post_head(2_000_000, "Expect: 100-continue\r\n"), wait=10)
        assert too_large.statuses == [413] and too_large.closed
        chunked = request("POST", PREDICT, [("Transfer-Encoding", "chunked")],
                          b"%x\r\n" % 1_100_000 + b"x" * 1_100_000 + b"\r\n0\r\n\r\n")
        assert exchange(rt.port, chunked, wait=10).statuses == [413]
        # Two uploads of 900 kB: the second would pass the 1.5 MB held in memory together.
        body = b'"' + b"x" * 899_998 + b'"'
        with socket.create_connection(("127.0.0.1", rt.port)) as first:
            first.sendall(post_head(len(body)) + body[:1000])
            time.sleep(0.3)
            second = exchange(rt.port, post_head(len(body)) + body, wait=10)
            assert second.statuses == [503] and second.closed and b"Retry-After: 1" in second.data
            first.sendall(body[1000:])
            answer, _ = read_until_closed(first, 0.5)
            while answer.count(b"x") < len(body) - 2:  # bounded: read_until_closed waits at most 10 s
                more, was_closed = read_until_closed(first, 10)
                assert more or not was_closed, answer[:200]
                answer += more
            assert answer.startswith(b"HTTP/1.1 200 ")
        # The budget is released with the request: the same upload now passes.
        assert exchange(rt.port, post_head(len(body)) + body + request("GET", "/", [("Connection", "close")]),
                        wait=10).statuses == [200, 200]
        assert_serving(rt)


def test_the_connection_cap_under_a_low_open_files_limit_keeps_predict_answering(tmp_path):
    app = make_app(tmp_path, MODEL)
    # 128 open files: the cap becomes 128 - 32 (the reserve left to the model) = 96 connections.
    with Runtime(app, open_files=128) as rt:
        rt.wait_ready()
        with partial_heads(rt.port, 250) as attackers:
            assert_serving(rt)
            assert_serving(rt)
            closed = sum(read_until_closed(sock, 0.01)[1] for sock in attackers)
            assert closed >= 250 - 96, (closed, rt.logs()[-2000:])  # the oldest partial heads made room
        summaries = [line for line in wait_for_log(rt, "to make room").splitlines() if "to make room" in line]
        assert 1 <= len(summaries) <= 5, summaries


def test_out_of_file_descriptors_pauses_accepting_without_an_error_storm(tmp_path):
    """The model holds most descriptors, so accept() itself fails (EMFILE) before the cap: the
    server closes a connection sending a head to make room instead of logging a traceback per
    attempt (asyncio's own accept loop logged 106,000 in 30 s)."""
    model = """
        import os


        class Model:
            def load(self):
                self.held = [os.open(os.devnull, os.O_RDONLY) for _ in range(80)]

            def predict(self, model_input):
                return model_input
    """
    app = make_app(tmp_path, model)
    with Runtime(app, open_files=128) as rt:
        rt.wait_ready()
        with partial_heads(rt.port, 120):
            assert_serving(rt)
        logs = wait_for_log(rt, "out of file descriptors")
        assert len(logs.splitlines()) < 40, logs[-3000:]


def test_connections_past_the_cap_are_refused_with_503_when_none_is_idle(tmp_path):
    model = """
        import time
        from pathlib import Path


        class Model:
            def __init__(self, **kwargs):
                self.gate = kwargs["data_dir"] / "open"

            def predict(self, model_input):
                for _ in range(600):
                    if self.gate.exists():
                        break
                    time.sleep(0.05)
                return model_input
    """
    app = make_app(tmp_path, model, config={"runtime": {"predict_concurrency": 4, "streaming_read_timeout": 60}})
    with Runtime(app, **{constants.PACK_HTTP_MAX_CONNECTIONS: "3"}) as rt:
        rt.wait_ready()
        busy = [socket.create_connection(("127.0.0.1", rt.port)) for _ in range(3)]
        try:
            for sock in busy:
                sock.sendall(post_head(8) + b'{"a": 1}')
            time.sleep(0.5)  # all three are in predict
            refused = exchange(rt.port, post_head(8) + b'{"a": 1}', wait=10)
            assert refused.statuses == [503] and refused.closed
            (app.root / "data" / "open").write_text("")
            for sock in busy:
                answer, _ = read_until_closed(sock, 1)
                assert answer.startswith(b"HTTP/1.1 200 "), answer
        finally:
            for sock in busy:
                sock.close()
        assert_serving(rt)


# A body far larger than the kernel's socket buffers hold (a few MiB on loopback), as one JSON
# string or as a stream of 1 MiB chunks.
BIG_MODEL = """
    class Model:
        def predict(self, model_input):
            size = model_input.get("size")
            if size is None:
                return model_input
            if model_input.get("stream"):
                return (b"x" * (1 << 20) for _ in range(size >> 20))
            return "x" * size
"""


@pytest.mark.parametrize("stream", [False, True], ids=["response", "stream"])
def test_a_client_that_stops_reading_a_response_is_cut_off_after_the_send_timeout(tmp_path, stream):
    size = 32 << 20
    app = make_app(tmp_path, BIG_MODEL)
    # The stall timeout is far off: what ends the stream is the send timeout.
    env = {constants.PACK_HTTP_SEND_TIMEOUT: "1", constants.PACK_STREAM_STALL_TIMEOUT: "600"}
    with Runtime(app, **env) as rt:
        rt.wait_ready()
        body = json.dumps({"size": size, "stream": stream}).encode()
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # before connecting: a small window
            sock.connect(("127.0.0.1", rt.port))
            sock.sendall(post_head(len(body)) + body)
            # Cut off while the client reads nothing (without the timeout the server waits forever,
            # holding the connection and the response).
            wait_for_log(rt, "send timeout", timeout=20)
            received, was_closed, _ = raw_http.read_until_closed(sock, 20)
            assert was_closed and received.startswith(b"HTTP/1.1 200 ") and len(received) < size, len(received)
        assert_serving(rt)
