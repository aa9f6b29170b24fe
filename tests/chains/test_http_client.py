"""The clients of chain calls (chains/http_client.py, chains/async_http.py) against real local
servers that count the connections they accept: calls reuse pooled keep-alive connections (async
and sync, unary and streams), a connection the server closed while idle is replaced without
re-sending anything the server received, and TLS verifies the certificate and the host name
(a throwaway CA from trustme, trusted through SSL_CERT_FILE)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

import chains
from chains import streaming
from chains.http_client import KEEPALIVE_ENV, TLSVerificationError
from chains.public_types import InternalURL
from chains.remote_session import RemoteSession


class CountingServer:
    """A threaded HTTP/1.1 keep-alive server on 127.0.0.1 answering each POST with the number of
    requests it has seen. `idle_close`: seconds after which it closes an idle connection;
    `drop_first`: it reads the first request and closes the connection without an answer;
    `tls`: an ssl server context. `stream`: answer with a framed stream of that many items."""

    def __init__(self, *, idle_close: float | None = None, drop_first: bool = False,
                 tls: object = None, stream: int = 0):
        self.accepted = 0  # TCP connections accepted (handshakes that fail count too)
        self.requests = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = idle_close  # the socket timeout: an idle connection is closed after it

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with outer.lock:
                    outer.requests += 1
                    seen = outer.requests
                if drop_first and seen == 1:
                    self.close_connection = True
                    return
                if stream:
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for frame in [streaming.START_FRAME] + [
                            streaming.frame(streaming.Tag.ITEM, b"item%d" % i) for i in range(stream)]:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                    time.sleep(0.05)  # the end comes later: a reader may leave before it
                    self.wfile.write(b"0\r\n\r\n")
                    return
                data = json.dumps(seen).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                with outer.lock:
                    outer.accepted += 1
                return super().get_request()

        self.httpd = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)  # type: ignore[attr-defined]
        self.scheme = "https" if tls is not None else "http"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.httpd.server_address[1]}/v1/models/model:predict"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve(request) -> Callable[..., CountingServer]:
    def make(**kwargs) -> CountingServer:
        server = CountingServer(**kwargs)
        request.addfinalizer(server.close)
        return server

    return make


def session(url: str, **options) -> RemoteSession:
    return RemoteSession(chains.DeployedServiceDescriptor(
        name="Dep", display_name="Dep", options=chains.RPCOptions(**options), predict_url=url), None)


def call(remote: RemoteSession, kind: str) -> int:
    """One unary call through the async client (on a new event loop) or the sync one."""
    value: int = asyncio.run(remote.call_async({"x": 1})) if kind == "async" else remote.call_sync({"x": 1})
    return value


def test_async_calls_reuse_one_connection_and_in_flight_calls_share_a_few(serve):
    s = serve()
    remote = session(s.url(), concurrency_limit=4)

    async def calls():
        for _ in range(50):
            await remote.call_async({"x": 1})
        # 40 more, 4 at a time (the limit): the first connection and at most 3 more.
        await asyncio.gather(*[remote.call_async({"x": i}) for i in range(40)])

    asyncio.run(calls())
    assert s.requests == 90
    assert 1 <= s.accepted <= 4


def test_sync_calls_reuse_one_connection_and_threads_share_the_pool(serve):
    s = serve()
    remote = session(s.url())
    assert [remote.call_sync({"x": 1}) for _ in range(3)] == [1, 2, 3]
    for _ in range(47):
        remote.call_sync({"x": 1})
    assert s.accepted == 1
    threads = [threading.Thread(target=lambda: [remote.call_sync({"x": 1}) for _ in range(10)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert s.requests == 90
    assert s.accepted <= 4


def test_streams_return_their_connection_when_read_to_the_end(serve):
    s = serve(stream=3)
    remote = session(s.url())

    async def streams():
        got = []
        for _ in range(5):
            got.append([item async for item in remote.stream_items({"x": 1}, str)])
        # A stream left after its first item: its connection cannot carry another request.
        async for _ in remote.stream_items({"x": 1}, str):
            break
        got.append([item async for item in remote.stream_items({"x": 1}, str)])
        return got

    got = asyncio.run(streams())
    assert got == [["item0", "item1", "item2"]] * 6
    assert s.accepted == 2  # one for the five whole streams, one after the abandoned stream


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_retry(serve, kind, caplog):
    s = serve(idle_close=0.1)
    remote = session(s.url(), retries=0)  # a stale connection must not need a retry
    assert call(remote, kind) == 1
    time.sleep(0.4)  # the server has closed the pooled connection by now
    with caplog.at_level(logging.WARNING, logger="chains.rpc"):
        assert call(remote, kind) == 2
    assert s.requests == 2 and s.accepted == 2
    assert "retry" not in caplog.text


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_request_the_server_received_is_not_sent_again_beyond_the_retries(serve, kind):
    s = serve(drop_first=True)
    remote = session(s.url(), retries=0)
    with pytest.raises(ConnectionError, match="after 1 attempt"):
        call(remote, kind)
    assert s.requests == 1
    # With a retry allowed, the retry goes out on a new connection and is answered.
    s2 = serve(drop_first=True)
    assert call(session(s2.url(), retries=1), kind) == 2
    assert s2.requests == 2 and s2.accepted == 2


def test_idle_connections_expire_on_the_client_side(serve, monkeypatch):
    monkeypatch.setenv(KEEPALIVE_ENV, "0.1")
    s = serve()  # keeps connections open for ever
    remote = session(s.url())
    remote.call_sync({"x": 1})
    asyncio.run(remote.call_async({"x": 1}))
    time.sleep(0.3)
    remote.call_sync({"x": 1})
    asyncio.run(remote.call_async({"x": 1}))
    assert s.accepted == 4


def test_clients_of_closed_event_loops_close_cleanly(serve, caplog, capfd):
    s = serve()
    remote = session(s.url())
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        for _ in range(3):
            assert asyncio.run(remote.call_async({"x": 1})) >= 1
        gc.collect()
    assert "Unclosed" not in caplog.text + capfd.readouterr().err
    # Each asyncio.run is a new loop: its pool closed with it (one connection each).
    assert s.accepted == 3


def test_without_aiohttp_an_async_call_says_what_to_install(serve, monkeypatch):
    s = serve()
    monkeypatch.setitem(sys.modules, "chains.async_http", None)  # as in an image without it
    with pytest.raises(ImportError, match="pip_requirements"):
        asyncio.run(session(s.url()).call_async({"x": 1}))
    assert session(s.url()).call_sync({"x": 1}) == 1  # sync calls need nothing more


# --- TLS -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca, tmp_path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def _tls_server(serve, ca: trustme.CA, *names: str) -> CountingServer:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return serve(tls=context)


def test_tls_verified_with_the_ca_from_ssl_cert_file(serve, ca, ca_file, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    s = _tls_server(serve, ca, "localhost", "127.0.0.1")
    remote = session(s.url("localhost"))

    async def calls():
        return [await remote.call_async({"x": 1}) for _ in range(3)]

    assert asyncio.run(calls()) == [1, 2, 3]
    assert [remote.call_sync({"x": 1}) for _ in range(3)] == [4, 5, 6]
    assert s.accepted == 2  # one pooled TLS connection per client


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_tls_fails_for_an_untrusted_ca_and_is_not_retried(serve, ca, monkeypatch, tmp_path, kind):
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))  # a CA that did not sign the server's certificate
    s = _tls_server(serve, ca, "127.0.0.1")
    with pytest.raises(TLSVerificationError, match="failed: unable to get local issuer certificate.*SSL_CERT_FILE"):
        call(session(s.url(), retries=3), kind)
    assert s.requests == 0
    assert s.accepted == 1  # no retry: a certificate does not change between attempts


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_tls_fails_for_a_certificate_naming_another_host(serve, ca, ca_file, monkeypatch, kind):
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    s = _tls_server(serve, ca, "other.example")  # trusted CA, wrong name
    with pytest.raises(TLSVerificationError, match="(?i)mismatch|doesn't match|not valid for"):
        call(session(s.url(), retries=0), kind)
    assert s.requests == 0


def test_host_header_of_an_internal_url_and_tls_to_the_gateway(serve, ca, ca_file, monkeypatch):
    """internal_url: the connection (and the certificate check) is to the gateway, the Host
    header names the internal service."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    seen: list[str] = []
    s = _tls_server(serve, ca, "127.0.0.1")
    original = s.httpd.RequestHandlerClass.do_POST  # type: ignore[attr-defined]

    def do_post(handler):
        seen.append(handler.headers["Host"])
        original(handler)

    s.httpd.RequestHandlerClass.do_POST = do_post  # type: ignore[attr-defined]
    descriptor = chains.DeployedServiceDescriptor(
        name="Dep", display_name="Dep", options=chains.RPCOptions(),
        internal_url=InternalURL(gateway_run_remote_url=s.url(), hostname="chain-abc.internal"))
    remote = RemoteSession(descriptor, None)
    asyncio.run(remote.call_async({"x": 1}))
    remote.call_sync({"x": 1})
    assert seen == ["chain-abc.internal", "chain-abc.internal"]


def test_socket_count_helper_is_not_fooled_by_reuse():
    """The servers above count accepted connections: a client opening a second one is seen."""
    s = CountingServer()
    try:
        for _ in range(2):
            with socket.create_connection(s.httpd.server_address[:2]) as sock:
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                assert sock.recv(100).startswith(b"HTTP/1.1 200")
        assert s.accepted == 2
    finally:
        s.close()
