"""benchmarks/serving.py's keep-alive load generator, for servers that end connections.

serving.py's client treats a closed connection as fatal. Truss's docker_server image puts nginx in
front (it closes a keep-alive connection after keepalive_requests answers, sending
`Connection: close`), and a proxy may close after an error answer. Here each of the N clients
opens a new connection when its server said `Connection: close` or dropped it, and carries on;
what happened is counted (reconnects, dropped: a request lost with its connection). The client
itself is serving.py's `_Client` (same request, parsing and timing), in its own process:

    python benchmarks/vs_truss/load.py PORT CLIENTS SECONDS WARMUP BODY_JSON   # prints one JSON line
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import serving  # noqa: E402


class _Client(serving._Client):
    """serving's client that stops sending after a `Connection: close` answer and finishes
    (instead of failing) when the server ends the connection."""

    closing = False
    lost = False

    def data_received(self, data: bytes) -> None:
        pending = self.buffer + data
        end = pending.find(b"\r\n\r\n")
        if end >= 0 and b"\r\nconnection: close" in pending[:end].lower():
            self.closing = True  # the answer in flight is the connection's last
        super().data_received(data)

    def _send(self) -> None:
        if self.closing:
            if not self.done.done():
                self.done.set_result(None)
            return
        super()._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.lost = True
            self.done.set_result(None)


async def _slot(port: int, request: bytes, latencies: list[float], state: dict[str, bool],
                totals: dict[str, int]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        _, proto = await loop.create_connection(lambda: _Client(request, latencies, state), "127.0.0.1", port)
        await proto.done
        proto.transport.close()
        totals["errors"] += proto.errors
        totals["answered"] += proto.answered
        totals["dropped"] += proto.lost
        if not state["running"]:
            return
        totals["reconnects"] += 1


async def _load(port: int, clients: int, seconds: float, warmup: float, body: bytes) -> dict[str, object]:
    request = (f"POST {serving.PREDICT} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    latencies: list[float] = []
    state = {"running": True, "record": False}
    totals = {"errors": 0, "answered": 0, "dropped": 0, "reconnects": 0}
    slots = [asyncio.ensure_future(_slot(port, request, latencies, state, totals)) for _ in range(clients)]
    # Answers count from the end of the warm-up to the end of the window.
    asyncio.get_running_loop().call_later(warmup, state.update, {"record": True})
    t0 = time.perf_counter() + warmup
    await asyncio.sleep(warmup + seconds)
    state.update(record=False, running=False)
    elapsed = time.perf_counter() - t0
    await asyncio.wait_for(asyncio.gather(*slots), 60)
    latencies.sort()
    if not latencies:
        raise RuntimeError(f"no answer in {seconds} s: {totals}")
    p99 = latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)]
    return {"requests": len(latencies), "seconds": elapsed, **totals,
            "p50": latencies[len(latencies) // 2], "p99": p99}


def main(argv: list[str]) -> None:
    port, clients, seconds, warmup, body = int(argv[0]), int(argv[1]), float(argv[2]), float(argv[3]), argv[4]
    try:
        import uvloop  # as serving.py: the fastest client available

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_load(port, clients, seconds, warmup, body.encode()))))


if __name__ == "__main__":
    main(sys.argv[1:])
