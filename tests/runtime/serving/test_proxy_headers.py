"""The docker_server proxy forwards only what it parsed: request headers re-serialised without
hop-by-hop ones (and those a Connection header names), bodies re-framed; a malformed response
from the user's server is answered 502, never passed on; an Upgrade is tunnelled only after the
user's server answered 101, so bytes pipelined behind a refused upgrade never reach it."""

from __future__ import annotations

import http.client
import json
import socket
import sys

import pytest

from tests.runtime.harness import Runtime, free_port, make_app
from tests.runtime.serving.raw_http import exchange, request

UPSTREAM = r'''
import json, socket, sys, threading

port, seen = int(sys.argv[1]), sys.argv[2]


def response(status, headers, body):
    head = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


MALFORMED = {
    "/bad/both-framings": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"
                          b"2\r\nok\r\n0\r\n\r\n",
    "/bad/te-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok",
    "/bad/header-name": b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nok",
    "/bad/nul-value": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    "/bad/bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    "/bad/obs-fold": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
    "/bad/status": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
    "/bad/content-length": "HTTP/1.1 200 OK\r\nContent-Length: ²\r\n\r\nok".encode(),
    "/bad/differing-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    "/bad/head-too-large": b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 70000 + b"\r\nContent-Length: 2\r\n\r\nok",
    "/bad/chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nok\r\n0\r\n\r\n",
}


def handle(conn):
    with conn:
        reader = conn.makefile("rb")
        line = reader.readline()
        if not line:
            return
        target = line.split(b" ")[1].decode()
        with open(seen, "a") as fh:
            fh.write(target + "\n")
        head = [line.decode("latin-1").rstrip("\r\n")]
        while True:
            field = reader.readline()
            if field in (b"\r\n", b""):
                break
            head.append(field.decode("latin-1").rstrip("\r\n"))
        length = next((int(h.split(":", 1)[1]) for h in head[1:] if h.lower().startswith("content-length:")), 0)
        body = reader.read(length) if length else b""
        if target == "/health":
            conn.sendall(response("200 OK", [("Content-Length", "4")], b"true"))
        elif target in MALFORMED:
            conn.sendall(MALFORMED[target])
        elif target == "/upgrade-refused":
            conn.sendall(response("426 Upgrade Required", [("Content-Length", "10"), ("Connection", "close")],
                                  b"no upgrade"))
        elif target == "/upgrade":
            conn.sendall(response("101 Switching Protocols", [("Upgrade", "echo"), ("Connection", "Upgrade"),
                                                              ("X-Up", "101")], b""))
            while data := conn.recv(65536):
                conn.sendall(data)
        else:
            out = json.dumps({"head": head, "body": body.decode("latin-1")}).encode()
            conn.sendall(response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out))),
                                             ("Connection", "X-Hop, close"), ("X-Hop", "secret"), ("X-Kept", "yes")],
                                  out))


server = socket.create_server(("127.0.0.1", port))
while True:
    client, _ = server.accept()
    threading.Thread(target=handle, args=(client,), daemon=True).start()
'''
MALFORMED = ["both-framings", "te-gzip", "header-name", "nul-value", "bare-lf", "obs-fold", "status",
             "content-length", "differing-lengths", "head-too-large"]


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    base = tmp_path_factory.mktemp("proxy")
    port = free_port()
    seen = base / "seen.txt"
    config = {"docker_server": {"start_command": f"{sys.executable} data/upstream.py {port} {seen}",
                                "server_port": port, "predict_endpoint": "/echo",
                                "readiness_endpoint": "/health", "liveness_endpoint": "/health"}}
    app = make_app(base, None, config=config, files={"data/upstream.py": UPSTREAM})
    with Runtime(app) as rt:
        rt.wait_ready(30)
        yield rt, seen


def upstream_saw(body: bytes) -> dict:
    return json.loads(body[body.index(b"\r\n\r\n") + 4:])


def test_request_headers_are_re_serialised_without_hop_by_hop_ones(proxied):
    rt, _ = proxied
    headers = [("Connection", "X-Private"), ("X-Private", "secret"), ("Keep-Alive", "timeout=5"),
               ("TE", "trailers"), ("Proxy-Authorization", "Basic eA=="), ("Expect", "100-continue"),
               ("X-Kept", "yes"), ("Content-Type", "application/json")]
    chunked = request("POST", "/v1/models/model:predict", headers + [("Transfer-Encoding", "chunked")],
                      b"8\r\n{\"a\": 1}\r\n0\r\n\r\n")
    answer = exchange(rt.port, chunked + request("GET", "/", [("Connection", "close")]), wait=10)
    assert answer.statuses == [100, 200, 200], answer.data[:300]  # Expect answered here, not forwarded
    seen = upstream_saw(answer.data.split(b"HTTP/1.1 200")[1])
    head = seen["head"]
    assert head[0] == "POST /echo HTTP/1.1"
    names = [line.split(":", 1)[0].lower() for line in head[1:]]
    assert "x-kept" in names and "content-type" in names
    for dropped in ("x-private", "keep-alive", "te", "proxy-authorization", "expect", "transfer-encoding"):
        assert dropped not in names, (dropped, head)
    assert names.count("host") == 1 and names.count("content-length") == 1
    assert "Content-Length: 8" in head and seen["body"] == '{"a": 1}'


def test_response_headers_are_re_serialised_without_hop_by_hop_ones(proxied):
    rt, _ = proxied
    status, headers, _ = rt.request("GET", "/anything")
    assert status == 200
    assert headers.get("x-kept") == "yes"
    assert "x-hop" not in headers  # named by the upstream's Connection header


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_upstream_response_is_a_502_never_forwarded(proxied, kind):
    rt, _ = proxied
    status, headers, body = rt.request("GET", f"/bad/{kind}")
    assert status == 502, (kind, body)
    assert b"ok" not in body and "x-a" not in headers
    assert rt.request("GET", "/anything")[0] == 200
    assert "Traceback" not in rt.logs(), rt.logs()


def test_a_malformed_chunk_from_upstream_aborts_the_response(proxied):
    """The head was forwarded already: the body ends without its last chunk, visibly truncated."""
    rt, _ = proxied
    conn = http.client.HTTPConnection("127.0.0.1", rt.port, timeout=10)
    try:
        conn.request("GET", "/bad/chunk-size")
        response = conn.getresponse()
        assert response.status == 200
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            response.read()
    finally:
        conn.close()
    assert rt.request("GET", "/anything")[0] == 200
    assert "Traceback" not in rt.logs(), rt.logs()


def test_bytes_behind_a_refused_upgrade_never_reach_the_user_server(proxied):
    rt, seen = proxied
    upgrade = request("GET", "/upgrade-refused", [("Connection", "Upgrade"), ("Upgrade", "websocket")])
    answer = exchange(rt.port, upgrade + request("GET", "/hidden"), wait=10)
    assert answer.statuses == [426] and answer.data.endswith(b"no upgrade") and answer.closed
    assert "/hidden" not in seen.read_text()


def test_an_accepted_upgrade_is_tunnelled_with_a_re_serialised_101(proxied):
    rt, _ = proxied
    with socket.create_connection(("127.0.0.1", rt.port), timeout=10) as sock:
        sock.sendall(request("GET", "/upgrade", [("Connection", "Upgrade"), ("Upgrade", "echo")]))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert b"Upgrade: echo" in head and b"X-Up: 101" in head
        sock.sendall(b"raw bytes after the upgrade")
        echoed = head.split(b"\r\n\r\n", 1)[1]
        while len(echoed) < len(b"raw bytes after the upgrade"):
            echoed += sock.recv(65536)
        assert echoed == b"raw bytes after the upgrade"


def test_hostile_requests_are_refused_before_the_proxy(proxied):
    rt, seen = proxied
    answer = exchange(rt.port, request("POST", "/smuggle", [("Transfer-Encoding", "xchunked"), ("Content-Length", "5")],
                                       b"0\r\n\r\n"), wait=10)
    assert answer.statuses == [400] and answer.closed
    assert "/smuggle" not in seen.read_text()
    conn = http.client.HTTPConnection("127.0.0.1", rt.port, timeout=10)
    conn.request("GET", "/anything")
    assert conn.getresponse().status == 200
    conn.close()
