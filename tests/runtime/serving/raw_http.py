"""Raw-socket HTTP/1.1 for the hostile-client tests: send exact bytes, read what comes back until
the server closes (or a bounded wait ends), and split it into responses."""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass

# Not anchored to line starts: a response follows the previous body directly.
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


@dataclass
class Exchange:
    data: bytes  # everything the server sent
    closed: bool  # the server closed (FIN or reset) within the wait
    reset: bool

    @property
    def statuses(self) -> list[int]:
        return [int(m) for m in STATUS_LINE.findall(self.data)]

    @property
    def status(self) -> int | None:
        statuses = [s for s in self.statuses if s != 100]
        return statuses[0] if statuses else None


def read_until_closed(sock: socket.socket, wait: float) -> tuple[bytes, bool, bool]:
    """What the server sends until it closes, and whether it closed (FIN or reset) and reset,
    within `wait` s; at least one read is tried, however late this thread runs."""
    received = bytearray()
    deadline = time.monotonic() + wait
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return bytes(received), False, False
        except ConnectionResetError:
            return bytes(received), True, True
        if not data:
            return bytes(received), True, False
        received += data
        if time.monotonic() >= deadline:
            return bytes(received), False, False


def exchange(port: int, payload: bytes | list[bytes], wait: float = 5.0, pause: float = 0.0) -> Exchange:
    """Send `payload` (pieces `pause` s apart), then read until the server closes or `wait` s pass
    without it closing."""
    pieces = payload if isinstance(payload, list) else [payload]
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        try:
            for i, piece in enumerate(pieces):
                if i and pause:
                    time.sleep(pause)
                sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest was sent
        return Exchange(*read_until_closed(sock, wait))


def request(method: str, target: str, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
            version: str = "HTTP/1.1") -> bytes:
    """A well-formed request (Host first) with exactly the given headers."""
    lines = [f"{method} {target} {version}", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def read_response(sock: socket.socket, wait: float = 10.0) -> bytes:
    """One whole Content-Length-framed response from a keep-alive connection."""
    received = b""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        end = received.find(b"\r\n\r\n")
        if end >= 0:
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", received[:end])
            if length and len(received) >= end + 4 + int(length.group(1)):
                return received
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(65536)
        if not data:
            break
        received += data
    raise AssertionError(f"no whole response within {wait} s: {received[:300]!r}")
