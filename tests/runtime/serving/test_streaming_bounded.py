"""Streams run ahead of their client by a bounded buffer: a client that stops reading costs no
memory, an aborted stream closes the model's generator at once and leaves nothing alive, the
status and headers go out before the first chunk, and a first chunk that does not come within
streaming_read_timeout ends the stream (aborted, as a failure mid-way) instead of a 500."""

from __future__ import annotations

import http.client
import json
import socket
import struct
import time
from pathlib import Path

import pytest

from tests.runtime.harness import Runtime, make_app, runtime_importorskip

PREDICT = "/v1/models/model:predict"
MIB = 1 << 20

# The whole server runs with the cyclic GC off (load() turns it off): anything an aborted stream
# leaves in a reference cycle stays visible to `live`.
MODEL = """
    import asyncio
    import gc
    import json
    import os
    import time

    MIB = 1 << 20
    produced = {}


    class Model:
        def __init__(self, **kwargs):
            self._marks = os.environ["MARKS"]

        def load(self):
            gc.disable()

        def _mark(self, name, text="1"):
            path = os.path.join(self._marks, name)
            with open(path + ".tmp", "w") as fh:
                fh.write(text)
            os.replace(path + ".tmp", path)  # whole when it appears

        def predict(self, inputs):
            mode, tag = inputs["mode"], inputs.get("tag", "")
            if mode == "live":
                kinds = {"ChunkStream": 0, "StreamResponse": 0, "generator": 0, "async_generator": 0}
                for obj in gc.get_objects():
                    name = type(obj).__name__
                    if name in kinds and (name.startswith("Chunk") or name.startswith("Stream")
                                          or getattr(obj, "__name__", "").startswith("_big")):
                        kinds[name] += 1
                return kinds
            if mode == "produced":
                return produced.get(tag, 0)
            if mode == "big_sync":
                return self._big_sync(tag, inputs["count"])
            if mode == "big_async":
                return self._big_async(tag, inputs["count"])
            if mode == "response":  # a starlette StreamingResponse: pulled as the client reads
                from starlette.responses import StreamingResponse
                return StreamingResponse(self._big_async(tag, inputs["count"]))
            if mode == "gated":
                return self._gated(tag)
            if mode == "late":
                return self._late(tag, inputs["sleep"])
            raise ValueError(mode)

        def _big_sync(self, tag, count):
            try:
                for i in range(count):
                    produced[tag] = i + 1
                    yield b"x" * MIB  # a new object each time, as a model's output is
            finally:
                self._mark(f"closed-{tag}", str(produced.get(tag, 0)))

        async def _big_async(self, tag, count):
            try:
                for i in range(count):
                    produced[tag] = i + 1
                    await asyncio.sleep(0)
                    yield b"x" * MIB
            finally:
                self._mark(f"closed-{tag}", str(produced.get(tag, 0)))

        def _gated(self, tag):
            # The first chunk waits until the test has seen the status line.
            gate = os.path.join(self._marks, f"gate-{tag}")
            deadline = time.monotonic() + 30
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.01)
            yield "first;"
            yield "second;"

        def _late(self, tag, sleep):
            try:
                time.sleep(sleep)
                yield "too late;"
            finally:
                self._mark(f"closed-{tag}")
"""


@pytest.fixture(scope="module")
def marks(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("marks")


@pytest.fixture(scope="module")
def served(tmp_path_factory, marks):
    app = make_app(tmp_path_factory.mktemp("bounded"), MODEL,
                   config={"runtime": {"predict_concurrency": 8, "streaming_read_timeout": 1}})
    rt = Runtime(app, MARKS=str(marks)).start()
    rt.wait_ready()
    yield rt
    rt.kill()


def _send(rt: Runtime, body: dict, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", rt.port), timeout=30)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    data = json.dumps(body).encode()
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (PREDICT.encode(), len(data), data))
    return sock


def _read_at_least(sock: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        data = sock.recv(65536)
        assert data, "the server closed the stream early"
        got += data
    return got


def _reset(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0): the client is gone, without a goodbye."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _vm_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


def _wait_for(path: Path, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)
    return path.read_text()


def _live(rt: Runtime, timeout: float = 10.0) -> dict:
    """What the server still holds of streams, polled until nothing is left (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        status, kinds = rt.predict({"mode": "live"})
        assert status == 200, kinds
        if not any(kinds.values()) or time.monotonic() > deadline:
            return kinds
        time.sleep(0.05)


@pytest.mark.parametrize("mode", ["big_sync", "big_async"])
def test_a_client_that_stops_reading_512_mib_leaves_memory_flat(served, marks, mode):
    assert served.proc is not None
    tag = f"stalled-{mode}"
    start = _vm_rss_mib(served.proc.pid)
    sock = _send(served, {"mode": mode, "tag": tag, "count": 512}, rcvbuf=64 * 1024)
    _read_at_least(sock, MIB)
    peak = start
    for _ in range(30):  # 3 s of not reading: unbounded, the generator would have run to the end
        peak = max(peak, _vm_rss_mib(served.proc.pid))
        time.sleep(0.1)
    status, produced = served.predict({"mode": "produced", "tag": tag})
    assert status == 200
    assert produced < 64, f"the generator ran {produced} MiB ahead of a client that stopped reading"
    assert peak - start < 64, f"RSS grew from {start:.0f} to {peak:.0f} MiB"
    _reset(sock)
    assert int(_wait_for(marks / f"closed-{tag}")) == produced  # closed where it stood
    assert _live(served) == {"ChunkStream": 0, "StreamResponse": 0, "generator": 0, "async_generator": 0}


@pytest.mark.parametrize("mode", ["big_sync", "big_async", "response"])
def test_an_aborted_stream_closes_the_generator_and_leaves_nothing_alive(served, marks, mode):
    if mode == "response":
        runtime_importorskip("starlette")
    tag = f"aborted-{mode}"
    sock = _send(served, {"mode": mode, "tag": tag, "count": 100_000})
    _read_at_least(sock, 3 * MIB)  # reading: the producer runs, it is not parked
    _reset(sock)
    closed_after = int(_wait_for(marks / f"closed-{tag}"))
    assert closed_after < 100_000
    # With the cyclic GC off, a cycle through the aborted stream would keep these alive.
    assert _live(served) == {"ChunkStream": 0, "StreamResponse": 0, "generator": 0, "async_generator": 0}
    assert "client went away during a streamed response" in served.logs()


def test_a_finished_stream_leaves_nothing_alive(served, marks):
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    conn.request("POST", PREDICT, body=json.dumps({"mode": "big_sync", "tag": "finished", "count": 8}))
    assert len(conn.getresponse().read()) == 8 * MIB
    conn.close()
    assert _wait_for(marks / "closed-finished") == "8"
    assert _live(served) == {"ChunkStream": 0, "StreamResponse": 0, "generator": 0, "async_generator": 0}


def test_status_and_headers_arrive_before_the_first_chunk(served, marks):
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    conn.request("POST", PREDICT, body=json.dumps({"mode": "gated", "tag": "headers"}))
    resp = conn.getresponse()  # returns once the status line and headers are in
    assert resp.status == 200
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.getheader("Content-Type") == "application/octet-stream"
    assert not (marks / "gate-headers").exists()  # the model has not produced a chunk yet
    (marks / "gate-headers").write_text("open")
    assert resp.read() == b"first;second;"
    conn.close()


def test_no_first_chunk_within_the_read_timeout_ends_the_stream_without_a_500(served, marks):
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    conn.request("POST", PREDICT, body=json.dumps({"mode": "late", "tag": "late", "sleep": 3}))
    resp = conn.getresponse()
    assert resp.status == 200  # already sent when the timeout (1 s) struck
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        resp.read()  # aborted: no terminating chunk, so the client can tell
    conn.close()
    assert "runtime.streaming_read_timeout" in served.logs()
    _wait_for(marks / "closed-late")  # closed once its next() returned
    assert _live(served) == {"ChunkStream": 0, "StreamResponse": 0, "generator": 0, "async_generator": 0}
    assert served.request("GET", "/v1/models/model")[0] == 200


@pytest.mark.parametrize("mode", ["big_sync", "big_async"])
def test_a_client_that_reads_nothing_for_the_stall_timeout_gives_back_the_permit(tmp_path, runtimes, mode):
    marks = tmp_path / "marks"
    marks.mkdir()
    app = make_app(tmp_path, MODEL, config={"runtime": {"predict_concurrency": 1, "streaming_read_timeout": 60}})
    rt = runtimes(app, MARKS=str(marks), PACK_STREAM_STALL_TIMEOUT="1")
    rt.wait_ready()
    sock = _send(rt, {"mode": mode, "tag": "stalled", "count": 512}, rcvbuf=64 * 1024)
    _read_at_least(sock, MIB)
    _wait_for(marks / "closed-stalled")  # closed where it stood, the client still connected
    # The only permit is free again: a predict behind the stalled stream is answered.
    assert rt.predict({"mode": "produced", "tag": "stalled"}, timeout=30)[0] == 200
    assert "PACK_STREAM_STALL_TIMEOUT" in rt.logs()
    sock.close()


def test_a_lost_connection_keeps_no_traceback_of_the_frame_that_wrote():
    """A send that fails inside writer.write() raises in the transport; the reader, the drain
    waiters and the protocol's closed future keep the error. Kept with its traceback, it held the
    streaming frame (the response, the model's generator) in a cycle, about one abort in a hundred
    (the test above, with the GC off); deterministic here."""
    import asyncio

    from packager.runtime.serving.http_server import _Protocol

    async def lose() -> tuple[BaseException | None, list]:
        reader = asyncio.StreamReader()
        protocol = _Protocol(reader)
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError as exc:
            error = exc
        assert error.__traceback__ is not None
        protocol.connection_lost(error)
        closed = protocol._closed  # noqa: SLF001 - the future asyncio keeps the error in
        return reader.exception(), [closed.exception(), getattr(closed, "_exception_tb", None)]

    kept, (closed_error, closed_tb) = asyncio.run(lose())
    assert kept is not None and kept.__traceback__ is None
    assert closed_error is kept and closed_tb is None
