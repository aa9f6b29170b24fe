"""RPC semantics of chainlet stubs against real local HTTP servers: retries that mean retries
(transient failures only), remote errors re-raised with the remote traceback, stream item
boundaries, timeouts, msgpack, forwarded headers, the concurrency limit."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pydantic
import pytest

import chains
from chains import streaming
from chains.errors import RemoteErrorDetail, StackFrame
from chains.rpc import RemoteSession, StubBase, inbound_headers


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setenv("PACK_CHAINS_RETRY_BACKOFF_SECONDS", "0.01")


class Scripted:
    """A threaded HTTP server answering from a script: each entry is (status, body) or
    ("chunks", [bytes, ...]) or ("sleep", seconds, status, body); the last entry repeats."""

    def __init__(self, *script):
        self.script = list(script)
        self.requests: list[tuple[dict, bytes]] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with outer.lock:
                    outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    step = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                    outer.active += 1
                    outer.max_active = max(outer.max_active, outer.active)
                outer.answer(self, step)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/models/model:predict"

    def answer(self, handler, step):
        if step[0] == "sleep":
            time.sleep(step[1])
            step = step[2:]
        # A request stops counting as active before its answer goes out: once the client has the
        # answer it may send the next request, maybe before this thread runs again.
        with self.lock:
            self.active -= 1
        if step[0] == "chunks":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/octet-stream")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for chunk in step[1]:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                handler.wfile.flush()
                time.sleep(0.01)
            handler.wfile.write(b"0\r\n\r\n")
            return
        status, body = step
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    made = []

    def make(*script):
        made.append(Scripted(*script))
        return made[-1]

    yield make
    for s in made:
        s.close()


def session(url: str, **options) -> RemoteSession:
    return RemoteSession(chains.DeployedServiceDescriptor(
        name="Dep", display_name="Dep", options=chains.RPCOptions(**options), predict_url=url), "key")


class In(pydantic.BaseModel):
    text: str
    n: int = 1


def remote_error(cls="ValueError", module="builtins", message="bad input") -> dict:
    return {"error": RemoteErrorDetail(
        exception_cls_name=cls, exception_module_name=module, exception_message=message,
        user_stack_trace=[StackFrame(filename="/app/packages/my_chain.py", lineno=42,
                                     name="run_remote", line="raise ValueError('bad input')")],
    ).model_dump()}


def test_retry_after_one_503_async_and_sync(server):
    s = server((503, {"error": "Model with name model is not ready."}), (200, ["ok"]))
    assert asyncio.run(session(s.url, retries=1).call_async(In(text="a"))) == ["ok"]
    assert len(s.requests) == 2
    s2 = server((503, {"error": "not ready"}), (200, 7))
    assert session(s2.url, retries=1).call_sync(In(text="a")) == 7
    assert len(s2.requests) == 2


def test_retries_count_retries_not_attempts(server):
    s = server((502, b"bad gateway"))
    with pytest.raises(ConnectionError, match="after 4 attempt"):
        asyncio.run(session(s.url, retries=3).call_async(In(text="a")))
    assert len(s.requests) == 4
    s0 = server((503, {"error": "x"}))
    with pytest.raises(ConnectionError):
        asyncio.run(session(s0.url, retries=0).call_async(In(text="a")))
    assert len(s0.requests) == 1


def test_connection_refused_is_retried_then_reported():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="after 3 attempt"):
        asyncio.run(session(f"http://127.0.0.1:{port}/x", retries=2).call_async(In(text="a")))
    assert time.monotonic() - started < 5


def test_application_error_is_not_retried_and_keeps_the_remote_traceback(server):
    s = server((500, remote_error()), (200, "never"))
    with pytest.raises(ValueError) as info:
        asyncio.run(session(s.url, retries=5).call_async(In(text="a")))
    assert len(s.requests) == 1
    message = str(info.value)
    assert "(showing chained remote errors, root error at the bottom)" in message
    assert "Error calling dependency Chainlet `Dep`, HTTP status=500" in message
    assert "Chainlet-Traceback (most recent call last):" in message
    assert 'File "/app/packages/my_chain.py", line 42, in run_remote' in message
    assert "ValueError: bad input" in message
    assert info.value.remote_error.exception_cls_name == "ValueError"
    # An unknown class becomes GenericRemoteException; a plain string error too (not retried).
    s2 = server((500, remote_error(cls="Weird", module="nowhere")))
    with pytest.raises(chains.GenericRemoteException, match="nowhere.Weird: bad input"):
        session(s2.url, retries=3).call_sync(In(text="a"))
    assert len(s2.requests) == 1
    s3 = server((400, {"error": "Input Parsing Error: text: Field required"}))
    with pytest.raises(chains.GenericRemoteException, match="HTTP 400"):
        asyncio.run(session(s3.url, retries=3).call_async({"x": 1}))
    assert len(s3.requests) == 1


def test_a_503_carrying_a_remote_error_is_not_retried(server):
    s = server((503, remote_error(cls="RuntimeError", message="overloaded by design")))
    with pytest.raises(RuntimeError, match="overloaded by design"):
        asyncio.run(session(s.url, retries=3).call_async(In(text="a")))
    assert len(s.requests) == 1


def test_omitted_optional_args_are_not_sent(server):
    s = server((200, "ok"))
    asyncio.run(session(s.url).call_async(In(text="a")))
    assert json.loads(s.requests[0][1]) == {"text": "a"}
    headers = s.requests[0][0]
    assert headers["authorization"] == "Api-Key key"
    assert headers["content-type"] == "application/json"


def test_trace_headers_are_forwarded(server):
    s = server((200, "ok"))
    token = inbound_headers.set({"traceparent": "00-abc-def-01", "x-baseten-request-id": "r1"})
    try:
        session(s.url).call_sync(In(text="a"))
    finally:
        inbound_headers.reset(token)
    assert s.requests[0][0]["traceparent"] == "00-abc-def-01"
    assert s.requests[0][0]["x-baseten-request-id"] == "r1"


def test_msgpack_when_asked(server):
    import msgpack

    s = server((200, msgpack.packb({"a": [1, 2]})))
    # The scripted server labels it JSON; the stub decodes by its own option.
    assert asyncio.run(session(s.url, use_binary=True).call_async(In(text="é", n=2))) == {"a": [1, 2]}
    headers, body = s.requests[0]
    assert headers["content-type"] == "application/octet-stream"
    assert msgpack.unpackb(body) == {"text": "é", "n": 2}


def test_timeout_of_a_unary_call(server):
    s = server(("sleep", 2.0, 200, "late"))
    started = time.monotonic()
    with pytest.raises((TimeoutError, ConnectionError), match="Timeout calling remote Chainlet `Dep`|no response"):
        asyncio.run(session(s.url, timeout_sec=0.3, retries=0).call_async(In(text="a")))
    assert time.monotonic() - started < 1.5


def _framed(items: list[bytes]) -> bytes:
    return streaming.START_FRAME + b"".join(streaming.frame(streaming.Tag.ITEM, i) for i in items)


def test_stream_items_keep_their_boundaries_across_arbitrary_chunks(server):
    items = ["héllo ", "wörld", "", "✓✓", "end"]
    wire = _framed([i.encode() for i in items])
    # Cut the bytes at every 3rd byte: frames and UTF-8 characters are split across chunks.
    chunks = [wire[i:i + 3] for i in range(0, len(wire), 3)]
    s = server(("chunks", chunks))
    remote = session(s.url)

    async def collect():
        return [item async for item in remote.stream_items(In(text="a"), str)]

    assert asyncio.run(collect()) == items
    assert s.requests[0][0]["x-pack-chains-stream"] == "framed-v1"
    assert remote.ongoing == 0


def test_stream_error_frame_is_re_raised(server):
    detail = RemoteErrorDetail.model_validate(remote_error(cls="KeyError", message="'missing'")["error"])
    wire = _framed([b"first"]) + streaming.frame(streaming.Tag.ERROR, detail.model_dump_json().encode())
    s = server(("chunks", [wire]))

    async def collect(got):
        async for item in session(s.url).stream_items(In(text="a"), str):
            got.append(item)

    got: list[str] = []
    with pytest.raises(KeyError, match="Chainlet-Traceback"):
        asyncio.run(collect(got))
    assert got == ["first"]


def test_unframed_stream_is_decoded_incrementally(server):
    text = "héllo wörld ✓"
    data = text.encode()
    s = server(("chunks", [data[i:i + 1] for i in range(len(data))]))

    async def collect():
        return "".join([item async for item in session(s.url).stream_items(In(text="a"), str)])

    assert asyncio.run(collect()) == text


def test_concurrency_limit_per_dependency(server):
    s = server(("sleep", 0.2, 200, "ok"))
    remote = session(s.url, concurrency_limit=2)

    async def many():
        return await asyncio.gather(*[remote.call_async(In(text=str(i))) for i in range(6)])

    started = time.monotonic()
    assert asyncio.run(many()) == ["ok"] * 6
    # Never more than 2 at once, so 6 calls of 0.2 s need at least 3 rounds.
    assert s.max_active <= 2
    assert time.monotonic() - started >= 0.55
    assert remote.ongoing == 0 and remote.total == 6


def test_stub_from_url(server):
    s = server((200, {"value": 3}))

    class Out(pydantic.BaseModel):
        value: int

    stub = StubBase.from_url(s.url, "api-key")
    assert stub.predict_sync({"x": 1}, Out).value == 3
    assert s.requests[0][0]["authorization"] == "Api-Key api-key"
