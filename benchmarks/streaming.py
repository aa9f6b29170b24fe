"""Streaming through the in-image server: time to headers and to the first chunk, throughput for
large and for token-sized chunks (sync and async generators), and the server's memory while a
client stops reading a 512 MiB stream.

    python benchmarks/streaming.py [--repeat 20] [--mib 256] [--code-root DIR]

--code-root runs another copy of the runtime (e.g. `git archive REV packager | tar -x -C DIR`)
for a before/after comparison on the same machine.

`measure()` (or `streaming_rows()` against a runtime serving MODEL) is what benchmarks/serving.py
prints in its streaming section. No assertions:
figures only (tests/runtime/serving/test_streaming_*.py check the behaviour).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.runtime.harness import Runtime, make_app  # noqa: E402

MODEL = """
    import asyncio
    import time


    class Model:
        def predict(self, inputs):
            mode, size, count = inputs["mode"], inputs.get("size", 0), inputs.get("count", 0)
            if mode == "sync":
                return self._sync(size, count)
            if mode == "async":
                return self._async(size, count)
            if mode == "slow_first":
                return self._slow_first(inputs["delay"])
            raise ValueError(mode)

        def _sync(self, size, count):
            for _ in range(count):
                yield b"x" * size  # a new object each time, as a model's output is

        async def _async(self, size, count):
            for _ in range(count):
                yield b"x" * size

        def _slow_first(self, delay):
            time.sleep(delay)
            yield b"first"
"""
PREDICT = "/v1/models/model:predict"
MIB = 1 << 20


def _post(port: int, body: dict) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", PREDICT, body=json.dumps(body))
    return conn, conn.getresponse()


def time_to_first(port: int, delay: float, repeat: int) -> tuple[float, float]:
    """Median seconds from sending to the status line, and to the first chunk, for a generator
    that waits `delay` s before its first chunk."""
    heads, firsts = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        conn, resp = _post(port, {"mode": "slow_first", "delay": delay})
        heads.append(time.perf_counter() - t0)
        resp.read(5)
        firsts.append(time.perf_counter() - t0)
        resp.read()
        conn.close()
    return statistics.median(heads), statistics.median(firsts)


def throughput(port: int, mode: str, size: int, count: int) -> float:
    """Bytes per second of one streamed response, read by the client as fast as it can."""
    t0 = time.perf_counter()
    conn, resp = _post(port, {"mode": mode, "size": size, "count": count})
    total = 0
    while True:
        data = resp.read1(1 << 20)
        if not data:
            break
        total += len(data)
    conn.close()
    assert total == size * count, (total, size * count)
    return total / (time.perf_counter() - t0)


def vm_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def stalled_reader_rss(rt: Runtime, mib: int, wait: float = 5.0) -> tuple[float, float]:
    """Server RSS before, and the peak over `wait` s while a client has read 1 MiB of a
    `mib` MiB stream and stopped reading."""
    assert rt.proc is not None
    before = vm_rss_mib(rt.proc.pid)
    sock = socket.create_connection(("127.0.0.1", rt.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    body = json.dumps({"mode": "sync", "size": MIB, "count": mib}).encode()
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (PREDICT.encode(), len(body), body))
    got = 0
    while got < MIB:
        got += len(sock.recv(65536))
    peak, deadline = before, time.monotonic() + wait
    while time.monotonic() < deadline:
        peak = max(peak, vm_rss_mib(rt.proc.pid))
        time.sleep(0.1)
    sock.close()
    return before, peak


def streaming_rows(rt: Runtime, repeat: int = 20, mib: int = 256) -> list[tuple[str, str]]:
    """(measure, figure) rows against a runtime serving MODEL (started afresh: the memory row
    comes first, before other streams have grown the heap)."""
    before, peak = stalled_reader_rss(rt, 512)
    head, first = time_to_first(rt.port, 0.0, repeat)
    slow_head, slow_first = time_to_first(rt.port, 0.2, max(3, repeat // 4))
    rows = [("server RSS, stalled reader of 512 MiB (before -> peak)", f"{before:.0f} -> {peak:.0f} MiB"),
            ("time to status line, immediate chunk (median)", f"{head * 1000:.2f} ms"),
            ("time to first chunk, immediate chunk (median)", f"{first * 1000:.2f} ms"),
            ("time to status line, first chunk after 200 ms", f"{slow_head * 1000:.1f} ms"),
            ("time to first chunk, first chunk after 200 ms", f"{slow_first * 1000:.1f} ms")]
    for mode in ("sync", "async"):
        rate = max(throughput(rt.port, mode, MIB, mib) for _ in range(3))
        rows.append((f"{mode} generator, {mib} x 1 MiB chunks", f"{rate / MIB:.0f} MiB/s"))
        count = 20000
        rate = max(throughput(rt.port, mode, 16, count) for _ in range(3))
        rows.append((f"{mode} generator, {count} x 16 B chunks", f"{rate / 16:.0f} chunks/s"))
    return rows


def measure(repeat: int = 20, mib: int = 256, code_root: Path | None = None) -> list[tuple[str, str]]:
    """streaming_rows() against a fresh runtime serving MODEL (from `code_root`, default this tree)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp), MODEL, config={"runtime": {"predict_concurrency": 4,
                                                             "streaming_read_timeout": 60}})
        with Runtime(app, code_root=code_root) as rt:
            rt.wait_ready()
            return streaming_rows(rt, repeat, mib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--mib", type=int, default=256, help="size of the throughput streams")
    parser.add_argument("--code-root", type=Path, help="a directory holding the packager/ to run")
    args = parser.parse_args()
    rows = measure(args.repeat, args.mib, args.code_root)
    width = max(len(name) for name, _ in rows)
    for name, figure in rows:
        print(f"{name:<{width}} | {figure}")


if __name__ == "__main__":
    main()
