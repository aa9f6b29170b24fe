"""Strict HTTP/1.1 message syntax (RFC 9110, RFC 9112), for requests read by http_server and for
the responses the docker_server proxy reads from the user's server.

As strict as h11 and llhttp where they agree, stricter where one of them is lenient:
* every line ends in CRLF: a bare LF or a bare CR is malformed (llhttp; h11 accepts bare LF);
* request line: token method, one SP, a target of visible ASCII, one SP, HTTP/<d>.<d>;
* header names are tokens (no whitespace before the colon); values hold no control character
  but HTAB, obs-fold (a line starting with whitespace) is malformed;
* framing: Transfer-Encoding must be exactly `chunked` (one header, HTTP/1.1), never beside a
  Content-Length (both: a smuggling attempt, rejected, not resolved); Content-Length is ASCII
  digits only (`²` passes str.isdigit and is malformed here), repeated values must agree;
* chunk-size lines: hex digits only (no sign, `0x`, `_` or whitespace), at most 16 of them, an
  extension of at most MAX_CHUNK_LINE bytes without control characters.

Everything works on bytes as read from the socket; names and values are returned as latin-1 str.
Hand-written rather than httptools (llhttp): the runtime runs on the user's Python with the
user's packages and imports nothing outside the standard library (see benchmarks/serving.py for
the throughput of both).
"""

from __future__ import annotations

import re
from typing import Optional, Protocol

MAX_HEADER_LINES = 200
MAX_CHUNK_LINE = 4096  # a chunk-size line with its extensions; llhttp and h11 bound it too
MAX_CONTENT_LENGTH_DIGITS = 18  # fits an int64, as h11's CONTENT_LENGTH_MAX_DIGITS (20) nearly

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 tchar
# Control characters but HTAB (bare CR and LF included) and DEL.
FIELD_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
TARGET = re.compile(rb"[\x21-\x7e]+")
VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
DIGITS = re.compile(rb"[0-9]+")
CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;([^\x00-\x08\x0a-\x1f\x7f]*))?\r\n")
SUPPORTED_VERSIONS = ("HTTP/1.1", "HTTP/1.0")
_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
REQUEST_LINE = re.compile(rb"(" + _TCHAR + rb"+) ([\x21-\x7e]+) (HTTP/[0-9]\.[0-9])\r\n")
# A field line, from the start of a line: a token, a colon, then no control character but HTAB,
# and CRLF -> (name, value without leading SP or HTAB). Applied to a whole block (latin-1 text):
# a line it does not match is one findall() skips, so fewer matches than lines is a malformed
# block. Linear on any input (no lazy match before optional whitespace: that backtracks
# quadratically).
HEADER_LINE = re.compile(r"^(" + _TCHAR.decode("ascii") + r"+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*)\r\n",
                         re.MULTILINE)

Header = tuple[str, str]
# How a message's body is delimited: ("length", n), ("chunked", None), or ("none", 0).
Framing = tuple[str, Optional[int]]


class BadRequest(Exception):
    """A malformed or unacceptable request: answered with `status` and a closed connection."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _crlf_line(line: bytes, what: str, status: int = 400) -> bytes:
    """`line` without its CRLF; a bare LF is malformed (a CR elsewhere is left to the caller's
    grammar, which allows none)."""
    if not line.endswith(b"\r\n"):
        raise BadRequest(status, f"{what} does not end in CRLF (bare LF)")
    return line[:-2]


def parse_request_line(line: bytes) -> tuple[str, str, str]:
    """`line` as read (with its CRLF) -> (method, target, version)."""
    if REQUEST_LINE.fullmatch(line) is None:
        text = _crlf_line(line, "request line")
        raise BadRequest(400, f"malformed request line {text[:100]!r}")
    method, target, version = line[:-2].decode("ascii").split(" ")
    if version not in SUPPORTED_VERSIONS:
        raise BadRequest(505, f"unsupported protocol {version}")
    return method, target, version


def parse_head(head: bytes) -> tuple[str, str, str, list[Header]]:
    """A whole request head as read, up to and with its blank line -> (method, target, version,
    headers)."""
    end = head.find(b"\n") + 1
    method, target, version = parse_request_line(head[:end])
    return method, target, version, parse_header_block(head[end:-2])


def parse_header_block(block: bytes) -> list[Header]:
    """The field lines of a head as read (each with its CRLF; the blank line left out) -> headers.
    One pattern checks them all at once; only a block it refuses is looked at line by line, for
    the message."""
    lines = block.count(b"\n")
    if lines > MAX_HEADER_LINES:
        raise BadRequest(431, f"more than {MAX_HEADER_LINES} header lines")
    # Checked and split in one C pass (each match is one whole line), not a Python loop per line.
    headers: list[Header] = HEADER_LINE.findall(block.decode("latin-1"))
    if len(headers) != lines or not block.endswith(b"\n") and block:
        for raw in block.split(b"\n")[:-1]:
            parse_header_line(raw + b"\n")
        raise BadRequest(400, "malformed header block")  # a line without its CRLF, at the end
    # find(), not `in`: bytes.__contains__ tries the argument as an int first (a TypeError made
    # and dropped each time).
    if block.find(b" \r\n") >= 0 or block.find(b"\t\r\n") >= 0:  # rare: a value ends in whitespace
        headers = [(name, value.rstrip(" \t")) for name, value in headers]
    return headers


def parse_header_line(line: bytes) -> Header:
    """One field line as read (with its CRLF) -> (name, value without surrounding whitespace)."""
    text = _crlf_line(line, "header line")
    name, sep, value = text.partition(b":")
    if not sep or not TOKEN.fullmatch(name):
        raise BadRequest(400, f"malformed header line {text[:100]!r}")
    if FIELD_CTL.search(value):
        raise BadRequest(400, f"control character in the value of header {name.decode('ascii')!r}")
    return name.decode("ascii"), value.strip(b" \t").decode("latin-1")


def parse_status_line(line: bytes) -> tuple[str, int]:
    """A response's status line as read -> (version, status); the reason phrase is dropped."""
    text = _crlf_line(line, "status line", 502)
    version, _, rest = text.partition(b" ")
    code = rest[:3]
    if not VERSION.fullmatch(version) or len(code) != 3 or not DIGITS.fullmatch(code) \
            or rest[3:4] not in (b"", b" ") or FIELD_CTL.search(rest[4:]) or int(code) < 100:
        raise BadRequest(502, f"malformed status line {text[:100]!r}")
    return version.decode("ascii"), int(code)


def parse_content_length(values: list[str]) -> int:
    """Every Content-Length value (repeated headers, comma lists) -> the one length they agree on."""
    lengths = {part.strip(" \t") for value in values for part in value.split(",")}
    if len(lengths) != 1:
        raise BadRequest(400, f"conflicting Content-Length values {sorted(lengths)[:4]}")
    length = lengths.pop()
    # ASCII digits only: "²" and other Unicode digits pass str.isdigit() and are not lengths.
    if not (length.isascii() and length.isdigit()) or len(length) > MAX_CONTENT_LENGTH_DIGITS:
        raise BadRequest(400, f"malformed Content-Length {length[:30]!r}")
    return int(length)


class HeaderLookup(Protocol):
    """http_server.Headers, or its plain dict of lower-cased names (Headers.lowered)."""

    def get(self, name: str, default: None = None, /) -> str | None: ...


def request_framing(version: str, headers: HeaderLookup) -> Framing:
    """How a request's body is delimited, per RFC 9112 §6.3, refusing what a smuggler relies on
    (and a repeated Host, RFC 9112 §3.2). `headers`: lower-cased names, repeated ones joined
    with ", " (http_server.Headers), so a repeated header shows as a list."""
    host = headers.get("host")
    if host is not None and "," in host:  # a host holds no comma: the header was repeated
        raise BadRequest(400, "more than one Host header")
    encoding = headers.get("transfer-encoding")
    length = headers.get("content-length")
    if encoding is not None:
        if length is not None:
            raise BadRequest(400, "both Transfer-Encoding and Content-Length")
        if version != "HTTP/1.1":
            raise BadRequest(400, f"Transfer-Encoding in an {version} request")
        if encoding.lower() != "chunked":
            raise BadRequest(400, f"unsupported Transfer-Encoding {encoding[:60]!r} (only 'chunked' is accepted)")
        return "chunked", None
    if length is not None:
        if length.isdigit() and length.isascii() and len(length) <= MAX_CONTENT_LENGTH_DIGITS:
            return "length", int(length)  # the common case, without the splitting below
        return "length", parse_content_length([length])
    return "none", 0


def response_framing(status: int, method: str, headers: list[Header]) -> Framing:
    """How a response's body is delimited (RFC 9112 §6.3); ("close", None): until the connection
    closes. Both framing headers, or a transfer coding other than chunked, raise BadRequest(502)."""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return "none", 0
    encodings = [v for k, v in headers if k.lower() == "transfer-encoding"]
    lengths = [v for k, v in headers if k.lower() == "content-length"]
    if encodings:
        if lengths:
            raise BadRequest(502, "upstream sent both Transfer-Encoding and Content-Length")
        if len(encodings) != 1 or encodings[0].lower() != "chunked":
            raise BadRequest(502, f"upstream sent an unsupported Transfer-Encoding {encodings[0][:60]!r}")
        return "chunked", None
    if lengths:
        try:
            return "length", parse_content_length(lengths)
        except BadRequest as exc:
            raise BadRequest(502, f"upstream: {exc}") from None
    return "close", None


def parse_chunk_size(line: bytes) -> int:
    """A chunk-size line as read (with its CRLF, at most MAX_CHUNK_LINE bytes) -> the size."""
    match = CHUNK_SIZE.fullmatch(line) if len(line) <= MAX_CHUNK_LINE else None
    if match is None:
        raise BadRequest(400, f"malformed chunk-size line {line[:40]!r}")
    return int(match.group(1), 16)


def connection_tokens(headers: list[Header]) -> set[str]:
    """The lower-cased tokens of every Connection header."""
    return {token.strip(" \t").lower() for k, v in headers if k.lower() == "connection"
            for token in v.split(",") if token.strip(" \t")}


def valid_field(name: str, value: str) -> bool:
    """True when (name, value) may be written into a message head as it is."""
    try:
        raw_value = value.encode("latin-1")
        return TOKEN.fullmatch(name.encode("ascii")) is not None and FIELD_CTL.search(raw_value) is None
    except UnicodeEncodeError:
        return False
