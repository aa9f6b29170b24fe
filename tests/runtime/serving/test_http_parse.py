"""The strict HTTP/1.1 syntax rules (packager/runtime/serving/http_parse.py), one by one; the
hostile-client suite (test_hostile_http.py) checks them end to end through the server."""

from __future__ import annotations

import pytest

from packager.runtime.serving.http_parse import (
    BadRequest,
    parse_chunk_size,
    parse_content_length,
    parse_header_line,
    parse_request_line,
    parse_status_line,
    request_framing,
    response_framing,
    valid_field,
)
from packager.runtime.serving.http_server import Headers, response_head


def status_of(fn, *args) -> int:
    with pytest.raises(BadRequest) as caught:
        fn(*args)
    return caught.value.status


def test_request_lines():
    assert parse_request_line(b"POST /v1/models/model:predict?x=1 HTTP/1.1\r\n") == (
        "POST", "/v1/models/model:predict?x=1", "HTTP/1.1")
    assert parse_request_line(b"GET http://h/p HTTP/1.0\r\n") == ("GET", "http://h/p", "HTTP/1.0")
    for line in (b"GET / HTTP/1.1\n", b"GET  / HTTP/1.1\r\n", b"GET / HTTP/1.1 \r\n", b"G@T / HTTP/1.1\r\n",
                 b"GET /\x00 HTTP/1.1\r\n", b"GET /\xe9 HTTP/1.1\r\n", b"GET / HTTP/1.1\r\r\n", b"GET /\r\n",
                 b"GET / HTTP/11\r\n"):
        assert status_of(parse_request_line, line) == 400, line
    assert status_of(parse_request_line, b"GET / HTTP/2.0\r\n") == 505


def test_header_lines():
    assert parse_header_line(b"Content-Type:  application/json \t\r\n") == ("Content-Type", "application/json")
    assert parse_header_line(b"X-Empty:\r\n") == ("X-Empty", "")
    assert parse_header_line(b"X-Latin: caf\xe9\r\n") == ("X-Latin", "caf\xe9")  # obs-text, as h11
    assert parse_header_line(b"X-Tab: a\tb\r\n") == ("X-Tab", "a\tb")
    for line in (b"Bad Name: x\r\n", b"X-A : x\r\n", b" X-A: x\r\n", b": x\r\n", b"X-A x\r\n", b"X(A): x\r\n",
                 b"X-A: a\x00b\r\n", b"X-A: a\rb\r\n", b"X-A: a\x7f\r\n", b"X-A: a\x1bb\r\n", b"X-A: b\n"):
        assert status_of(parse_header_line, line) == 400, line


def test_content_length():
    assert parse_content_length(["8"]) == 8
    assert parse_content_length(["8", "8, 8"]) == 8
    assert parse_content_length([" 0 "]) == 0
    for values in (["²"], ["٨"], ["+8"], ["-8"], ["0x8"], ["8_0"], ["8 8"], ["8", "9"], ["8, 9"], [""], ["9" * 19]):
        assert status_of(parse_content_length, values) == 400, values


def test_request_framing():
    def framing(version, headers):
        return request_framing(version, Headers(headers))

    assert framing("HTTP/1.1", [("Transfer-Encoding", "Chunked")]) == ("chunked", None)
    assert framing("HTTP/1.1", [("content-length", "12")]) == ("length", 12)
    assert framing("HTTP/1.1", [("Content-Length", "12"), ("Content-Length", "12")]) == ("length", 12)
    assert framing("HTTP/1.0", [("Host", "x")]) == ("none", 0)
    refused = [
        ("HTTP/1.1", [("Transfer-Encoding", "chunked"), ("Content-Length", "3")]),
        ("HTTP/1.1", [("Transfer-Encoding", "xchunked")]),
        ("HTTP/1.1", [("Transfer-Encoding", "chunked, gzip")]),
        ("HTTP/1.1", [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")]),
        ("HTTP/1.1", [("Transfer-Encoding", "identity")]),
        ("HTTP/1.0", [("Transfer-Encoding", "chunked")]),
        ("HTTP/1.1", [("Host", "a"), ("host", "b")]),
        ("HTTP/1.1", [("Content-Length", "3"), ("Content-Length", "4")]),
        ("HTTP/1.1", [("Content-Length", "²")]),
    ]
    for version, headers in refused:
        assert status_of(framing, version, headers) == 400, headers


def test_chunk_sizes():
    assert parse_chunk_size(b"1f\r\n") == 31
    assert parse_chunk_size(b"8;name=value;flag\r\n") == 8
    assert parse_chunk_size(b"0\r\n") == 0
    assert parse_chunk_size(b"f" * 16 + b"\r\n") == 2 ** 64 - 1  # the body limit refuses it, not the syntax
    for line in (b"0x8\r\n", b"0_8\r\n", b"-8\r\n", b"+8\r\n", b" 8\r\n", b"8 \r\n", b"\r\n", b"8\n",
                 b"0" * 17 + b"\r\n", b"8;" + b"a" * 5000 + b"\r\n", b"8;a\x00\r\n", b"g\r\n"):
        assert status_of(parse_chunk_size, line) == 400, line[:30]


def test_status_lines_and_response_framing():
    assert parse_status_line(b"HTTP/1.1 200 OK\r\n") == ("HTTP/1.1", 200)
    assert parse_status_line(b"HTTP/1.0 404\r\n") == ("HTTP/1.0", 404)
    for line in (b"HTTP/1.1 2000 OK\r\n", b"HTTP/1.1 20 OK\r\n", b"HTTP/1.1 099 X\r\n", b"HTTP/1.1 200 O\x00K\r\n",
                 b"HTTP/1.1 200 OK\n", b"ICY 200 OK\r\n", b"HTTP/1.1 200OK\r\n"):
        assert status_of(parse_status_line, line) == 502, line
    assert response_framing(200, "GET", [("Content-Length", "2")]) == ("length", 2)
    assert response_framing(200, "GET", [("Transfer-Encoding", "chunked")]) == ("chunked", None)
    assert response_framing(200, "GET", []) == ("close", None)
    assert response_framing(200, "HEAD", [("Content-Length", "2")]) == ("none", 0)
    assert response_framing(304, "GET", [("Content-Length", "2")]) == ("none", 0)
    for headers in ([("Transfer-Encoding", "chunked"), ("Content-Length", "2")], [("Transfer-Encoding", "gzip")],
                    [("Content-Length", "²")], [("Content-Length", "1"), ("Content-Length", "2")]):
        assert status_of(response_framing, 200, "GET", headers) == 502, headers


def test_response_heads_leave_out_headers_that_would_split_the_response():
    assert valid_field("X-A", "b") and not valid_field("X A", "b") and not valid_field("X-A", "a\r\nX-B: c")
    head = response_head(200, [("X-Ok", "1"), ("X-Split", "a\r\nSet-Cookie: evil=1"), ("X Bad", "2"),
                               ("X-Nul", "a\x00"), ("X-Wide", "\u20ac"), ("X-Also-Ok", "2")])
    assert head == b"HTTP/1.1 200 OK\r\nX-Ok: 1\r\nX-Also-Ok: 2\r\n\r\n"
    assert response_head(204, [("X-Latin", "caf\xe9")]) == b"HTTP/1.1 204 No Content\r\nX-Latin: caf\xe9\r\n\r\n"
    assert response_head(200, [("X Space", "1"), ("X-Ok", "1")]) == b"HTTP/1.1 200 OK\r\nX-Ok: 1\r\n\r\n"
    assert response_head(200, [("X-Colon:", "1")]) == b"HTTP/1.1 200 OK\r\n\r\n"
