"""The in-image server against uvicorn, on the same echo model:

    python benchmarks/serving.py [--seconds 5] [--rounds 3] [--clients 1,50,200]
                                 [--servers pack,pack@HEAD,httptools,h11] [--sections plain,parse,instructions]

Servers (each a fresh process on 127.0.0.1):
* pack: the runtime (packager/runtime/serving) serving a Truss model whose sync predict returns
  its input;
* uvicorn-httptools: the same Model class behind FastAPI on uvicorn with httptools + uvloop (the
  fastest uvicorn set-up);
* uvicorn-h11: the same, with h11 + uvloop (how Truss's own server runs it: truss_server.py
  hard-codes http="h11");
* pack@REV: the runtime as committed at a git revision (pack@HEAD: before the uncommitted change).
All run the sync predict in a worker thread, parse the JSON body and serialise the answer.

The load: a separate process (uvloop when installed) keeps N keep-alive HTTP/1.1 connections
busy, one request in flight on each, for `--seconds` after a one-second warm-up. Printed per
server and client count: requests/s, latency p50/p99, the server's CPU time per request (user +
system, all threads: steadier than req/s on a shared machine), and its RSS after the run (and its
peak). Needs the [bench] extra (uvicorn, httptools, uvloop, fastapi) for the uvicorn rows.

The parse section times the request-head parsing alone, per head: pack's strict parser (the whole
head in one read, and line by line as for heads that arrive slowly), the lenient one it had before
issue 17, and httptools (llhttp); the strict figures include the framing checks.

The instructions section (only when named: it runs each server under valgrind) counts the
instructions the server executes per request, every thread, at each client count: a figure that
other work on the machine does not move (req/s and CPU time swing by up to half with it).

Sections: `plain_rows()` is the request/response benchmark above. Other sections plug into
SECTIONS below (streaming figures from benchmarks/streaming.py's `streaming_rows()`, chain-call
figures from benchmarks/chain_calls.py) so that one command prints them all. No assertions:
figures only (tests/runtime/serving/ check the behaviour).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from packager.runtime.serving.http_parse import parse_head, parse_request_line, request_framing  # noqa: E402
from packager.runtime.serving.http_server import Headers, read_header_lines, read_line  # noqa: E402
from tests.runtime.harness import Runtime, free_port, make_app  # noqa: E402

PREDICT = "/v1/models/model:predict"
ECHO_MODEL = """
    class Model:
        def predict(self, model_input):
            return model_input
"""
# The same model behind FastAPI, the way Truss's server calls a sync predict (in a thread).
FASTAPI_APP = """
    import json

    from fastapi import FastAPI, Request
    from fastapi.responses import Response
    from starlette.concurrency import run_in_threadpool


    class Model:
        def predict(self, model_input):
            return model_input


    model = Model()
    app = FastAPI()


    @app.get("/v1/models/model")
    async def ready():
        return {"name": "model", "ready": True}


    @app.post("/v1/models/model:predict")
    async def predict(request: Request):
        inputs = json.loads(await request.body())
        result = await run_in_threadpool(model.predict, inputs)
        return Response(json.dumps(result), media_type="application/json")
"""
BODY = json.dumps({"text": "pack serves this request", "n": 42, "values": [1.5, 2.5, 3.5]}).encode()


# --- the load generator (runs in its own process: `serving.py _client ...`) -----------------------
class _Client(asyncio.Protocol):
    """One keep-alive connection sending the same request again as soon as the answer is in."""

    def __init__(self, request: bytes, latencies: list[float], state: dict[str, bool]):
        self.request, self.latencies, self.state = request, latencies, state
        self.buffer = b""
        self.sent = 0.0
        self.transport: Any = None  # uvloop's transports are no asyncio.Transport
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.errors = 0
        self.answered = 0  # warm-up included

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"content-length:")
        if at < 0:
            raise RuntimeError(f"no Content-Length in {head!r}")
        length = int(head[at + 15:head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        if not head.startswith(b"http/1.1 200"):
            self.errors += 1
        self.answered += 1
        self.buffer = self.buffer[end + 4 + length:]
        if self.state["record"]:
            self.latencies.append(time.perf_counter() - self.sent)
        if self.state["running"]:
            self._send()
        elif not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("server closed the connection"))


async def _load(port: int, clients: int, seconds: float, warmup: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    request = (f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY
    latencies: list[float] = []
    state = {"running": True, "record": False}
    protocols = []
    for _ in range(clients):
        _, proto = await loop.create_connection(lambda: _Client(request, latencies, state), "127.0.0.1", port)
        protocols.append(proto)
    await asyncio.sleep(warmup)
    state["record"] = True
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    state["record"] = False
    elapsed = time.perf_counter() - t0
    state["running"] = False
    await asyncio.wait_for(asyncio.gather(*(p.done for p in protocols)), 30)
    for proto in protocols:
        assert proto.transport is not None
        proto.transport.close()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)]
    return {"requests": len(latencies), "seconds": elapsed, "errors": sum(p.errors for p in protocols),
            "answered": sum(p.answered for p in protocols),
            "p50": latencies[len(latencies) // 2], "p99": p99}


def _client_main(argv: list[str]) -> None:
    port, clients, seconds, warmup = int(argv[0]), int(argv[1]), float(argv[2]), float(argv[3])
    try:
        import uvloop  # the fastest client available, so that the servers are what is measured
        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_load(port, clients, seconds, warmup))))


def run_load(port: int, clients: int, seconds: float, warmup: float = 1.0) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "_client", str(port), str(clients), str(seconds), str(warmup)],
                         capture_output=True, text=True, timeout=seconds + warmup + 120)
    if out.returncode:
        raise RuntimeError(f"the load generator failed:\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout)
    return result


# --- servers --------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) of a process, MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


@dataclass
class Server:
    name: str
    port: int
    pid: int


def wait_ready(port: int, timeout: float = 60.0) -> None:
    import http.client
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/v1/models/model")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing ready on port {port}")


def revision_root(dest: Path, rev: str) -> Path:
    """packager/ as committed at git revision `rev`, laid out under `dest` (made here)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev, "packager"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest)  # noqa: S202 - our own repository's archive
    return dest


@contextmanager
def pack_server(tmp: Path, rev: str | None = None, code_root: Path | None = None) -> Iterator[Server]:
    """The runtime of this checkout, of a git revision (`rev`), or laid out under `code_root`."""
    name = f"pack@{rev}" if rev else (f"pack:{code_root.name}" if code_root else "pack")
    if rev is not None:
        code_root = revision_root(tmp / name, rev)
    app = make_app(tmp / f"app-{name}", ECHO_MODEL)
    with Runtime(app, code_root=code_root) as rt:
        rt.wait_ready()
        assert rt.proc is not None
        yield Server(name, rt.port, rt.proc.pid)


@contextmanager
def uvicorn_server(tmp: Path, http: str) -> Iterator[Server]:
    app_dir = tmp / f"uvicorn-{http}"
    app_dir.mkdir(parents=True)
    (app_dir / "echo_app.py").write_text(textwrap.dedent(FASTAPI_APP))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "echo_app:app", "--host", "127.0.0.1",
                             "--port", str(port), "--loop", "uvloop", "--http", http, "--no-access-log",
                             "--log-level", "warning"], cwd=app_dir)
    try:
        wait_ready(port)
        yield Server(f"uvicorn-{http}", port, proc.pid)
    finally:
        proc.kill()
        proc.wait(10)


SERVERS: dict[str, Callable[[Path], object]] = {
    "pack": pack_server,
    "httptools": lambda tmp: uvicorn_server(tmp, "httptools"),
    "h11": lambda tmp: uvicorn_server(tmp, "h11"),
}


def server_for(name: str) -> Callable[[Path], object]:
    """A name of SERVERS; pack@REV: the runtime as committed at git revision REV; pack:DIR: the
    runtime laid out under DIR (DIR/packager/runtime/...), e.g. a revision with some files changed."""
    if name.startswith("pack@"):
        return lambda tmp: pack_server(tmp, rev=name.split("@", 1)[1])
    if name.startswith("pack:"):
        return lambda tmp: pack_server(tmp, code_root=Path(name.split(":", 1)[1]))
    return SERVERS[name]


# --- sections -------------------------------------------------------------------------------------
def plain_rows(servers: list[str], clients: list[int], seconds: float, rounds: int = 1) -> list[tuple[str, ...]]:
    """(server, clients, req/s, p50 ms, p99 ms, server CPU µs per request, RSS MiB, peak RSS MiB,
    errors) for each pair: of
    `rounds` rounds (the servers take turns, each started afresh), the round with the most req/s,
    so that a round disturbed by other work on the machine does not decide the figure."""
    best: dict[tuple[str, int], tuple[float, ...]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            for name in servers:
                with server_for(name)(Path(tmp) / f"{round_}") as server:  # type: ignore[attr-defined]
                    for count in clients:
                        cpu = cpu_seconds(server.pid)
                        result = run_load(server.port, count, seconds)
                        cpu = cpu_seconds(server.pid) - cpu
                        rss, peak = memory_mib(server.pid)
                        figures = (result["requests"] / result["seconds"], result["p50"] * 1000,
                                   result["p99"] * 1000, cpu / result["answered"] * 1e6, rss, peak, result["errors"])
                        if figures[0] > best.get((server.name, count), (0.0,))[0]:
                            best[(server.name, count)] = figures
    return [(name, str(count), f"{rate:.0f}", f"{p50:.2f}", f"{p99:.2f}", f"{cpu:.0f}", f"{rss:.0f}", f"{peak:.0f}",
             f"{errors:.0f}") for (name, count), (rate, p50, p99, cpu, rss, peak, errors) in best.items()]


PLAIN_HEADER = ("server", "clients", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "RSS MiB", "peak MiB", "errors")


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(" | ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True)))


# --- parsing alone: the share of a request a different parser could save -------------------------
PARSE_HEAD = (b"POST /v1/models/model:predict HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: python-httpx/0.27.0\r\n"
              b"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
              b"Content-Type: application/json\r\nContent-Length: 0\r\n\r\n")


async def _time_heads(count: int, parse: Callable[[asyncio.StreamReader], Awaitable[object]]) -> float:
    """Seconds `parse` takes for `count` heads, each fed to a StreamReader as a client sends it."""
    reader = asyncio.StreamReader(limit=64 * 1024)
    started = time.perf_counter()
    for _ in range(count):
        reader.feed_data(PARSE_HEAD)
        await parse(reader)
    return time.perf_counter() - started


async def _parse_strict(reader: asyncio.StreamReader) -> None:
    """pack's parsing as the server runs it: the whole head in one read, checked in one pass."""
    _, _, version, headers = parse_head(await reader.readuntil(b"\n\r\n"))
    request_framing(version, Headers(headers).lowered)  # as the server looks its headers up


async def _parse_lines(reader: asyncio.StreamReader) -> None:
    """pack's parsing of a head not complete 250 ms after the wait began: line by line."""
    line = await read_line(reader)
    _, _, version = parse_request_line(line)
    request_framing(version, Headers(await read_header_lines(reader, len(line))).lowered)


async def _parse_lenient(reader: asyncio.StreamReader) -> None:
    """The parsing pack had before issue 17: the whole head at once, split, barely checked."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    assert len(parts) == 3 and parts[0].isalpha() and parts[2] in ("HTTP/1.1", "HTTP/1.0")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))


def _parse_httptools(count: int) -> float | None:
    """llhttp through httptools, with the callbacks uvicorn's httptools protocol sets."""
    try:
        import httptools
    except ImportError:
        return None

    class Callbacks:
        def __init__(self) -> None:
            self.headers: list[tuple[bytes, bytes]] = []
            self.url = b""

        def on_message_begin(self) -> None:
            self.headers = []

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers.append((name.lower(), value))

        def on_headers_complete(self) -> None:
            self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.headers]

    callbacks = Callbacks()
    parser = httptools.HttpRequestParser(callbacks)
    started = time.perf_counter()
    for _ in range(count):
        callbacks.url = b""
        parser.feed_data(PARSE_HEAD)
        parser.get_method()
    return time.perf_counter() - started


def parse_rows(count: int = 50_000) -> list[tuple[str, ...]]:
    rows = []
    for name, seconds in (("pack, strict (whole head)", asyncio.run(_time_heads(count, _parse_strict))),
                          ("pack, strict (line by line: slow heads)", asyncio.run(_time_heads(count, _parse_lines))),
                          ("pack before issue 17 (lenient)", asyncio.run(_time_heads(count, _parse_lenient))),
                          ("httptools (llhttp)", _parse_httptools(count))):
        rows.append((name, "not installed" if seconds is None else f"{seconds / count * 1e6:.2f}"))
    return rows


# --- instructions per request: the same figure on a quiet machine and a busy one -------------------
def _keep_alive_requests(port: int, count: int, clients: int = 1) -> None:
    """`count` predict requests over `clients` keep-alive connections, one in flight on each."""
    import selectors

    request = (f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY
    socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(min(clients, count))]
    buffers = {sock: b"" for sock in socks}
    with selectors.DefaultSelector() as selector:
        try:
            for sock in socks:
                selector.register(sock, selectors.EVENT_READ)
                sock.sendall(request)
            sent, answered = len(socks), 0
            while answered < count:
                for key, _ in selector.select(60):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    data = sock.recv(65536)
                    if not data:
                        raise RuntimeError("the server closed a connection")
                    buffers[sock] += data
                    while (end := buffers[sock].find(b"\r\n\r\n")) >= 0:
                        head = buffers[sock][:end].lower()
                        at = head.index(b"content-length:") + 15
                        stop = head.find(b"\r\n", at)
                        length = int(head[at:stop if stop > 0 else None])
                        if len(buffers[sock]) < end + 4 + length:
                            break
                        if not head.startswith(b"http/1.1 200"):
                            raise RuntimeError(f"predict answered {head[:40]!r}")
                        buffers[sock] = buffers[sock][end + 4 + length:]
                        answered += 1
                        if sent < count:
                            sock.sendall(request)
                            sent += 1
        finally:
            for sock in socks:
                sock.close()


def _server_command(name: str, root: Path, port: int) -> tuple[list[str], dict[str, str], Path]:
    """(argv, environment, working directory) that start server `name` (as --servers names it) on
    `port`, its files under `root`."""
    from tests.runtime.harness import RUNTIME_PYTHON, runtime_env

    if name in ("httptools", "h11"):
        root.mkdir(parents=True)
        (root / "echo_app.py").write_text(textwrap.dedent(FASTAPI_APP))
        return ([sys.executable, "-m", "uvicorn", "echo_app:app", "--host", "127.0.0.1", "--port", str(port),
                 "--loop", "uvloop", "--http", name, "--no-access-log", "--log-level", "warning"],
                dict(os.environ), root)
    if name.startswith("pack@"):
        code_root = revision_root(root / "code", name.split("@", 1)[1])
    else:
        code_root = Path(name.split(":", 1)[1]) if name.startswith("pack:") else Path(ROOT)
    app = make_app(root, ECHO_MODEL)
    return [RUNTIME_PYTHON, "-m", "packager.runtime.entrypoint"], runtime_env(app, port, str(code_root)), code_root


def instruction_rows(servers: list[str], clients: list[int], requests: int = 2000) -> list[tuple[str, ...]]:
    """(server, clients, instructions per request) for each server and client count: the server
    process (every thread) counted by valgrind's callgrind over `requests` predict calls, that
    many keep-alive clients with one request in flight each, after a warm-up. Unlike req/s and
    CPU time, the count does not move with what else the machine runs (builds sharing 2 cores, or
    a busy sibling hyperthread, swing those by up to half)."""
    import shutil

    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        return [(name, "", "valgrind is not installed") for name in servers]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, count in [(name, count) for name in servers for count in clients]:
            root = Path(tmp) / f"{name.replace('/', '_')}-{count}"
            port = free_port()
            argv, env, cwd = _server_command(name, root, port)
            out = root / "callgrind.out"
            with open(Path(tmp) / f"{root.name}.log", "wb") as log:
                proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                         f"--callgrind-out-file={out}", *argv],
                                        env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
                try:
                    wait_ready(port, timeout=300)
                    _keep_alive_requests(port, 300, count)  # warm-up: caches, the thread pool, lazy imports
                    control = ["callgrind_control"]
                    subprocess.run([*control, "-i", "on", str(proc.pid)], check=True, capture_output=True)
                    _keep_alive_requests(port, requests, count)
                    subprocess.run([*control, "-i", "off", str(proc.pid)], check=True, capture_output=True)
                    subprocess.run([*control, "-d", str(proc.pid)], check=True, capture_output=True)
                finally:
                    proc.terminate()
                    proc.wait(60)
            totals = [int(line.split()[1]) for dump in root.glob("callgrind.out*")
                      for line in dump.read_text().splitlines() if line.startswith("totals:")]
            name = {"httptools": "uvicorn-httptools", "h11": "uvicorn-h11"}.get(name, name)
            rows.append((name, str(count), f"{max(totals) / requests / 1000:.1f}"))
    return rows


# Each section: (title, function of the parsed arguments that prints its figures). Streaming
# (benchmarks/streaming.py) and chain calls (benchmarks/chain_calls.py) add theirs here.
def _plain_section(args: argparse.Namespace) -> None:
    print_table(PLAIN_HEADER, plain_rows(args.servers, args.clients, args.seconds, args.rounds))


def _parse_section(args: argparse.Namespace) -> None:
    print_table(("parser, one 8-header request head", "µs per head"), parse_rows())


def _instructions_section(args: argparse.Namespace) -> None:
    print_table(("server (callgrind)", "clients", "thousand instructions per request"),
                instruction_rows(args.servers, args.clients))


def _streaming_section(args: argparse.Namespace) -> None:
    from benchmarks.streaming import measure

    print_table(("streaming (benchmarks/streaming.py)", "figure"), measure())


def _chains_section(args: argparse.Namespace) -> None:
    from benchmarks.chain_calls import HEADER, SESSIONS, chain_call_rows

    print_table(HEADER, chain_call_rows(list(SESSIONS)))


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "plain": _plain_section,
    "parse": _parse_section,
    "streaming": _streaming_section,
    "chains": _chains_section,
    "instructions": _instructions_section,  # under valgrind: slow, so only when named
}


def main() -> None:
    if sys.argv[1:2] == ["_client"]:
        return _client_main(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1, help="repeat, keep each figure's best round")
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 50, 200])
    parser.add_argument("--servers", type=lambda s: s.split(","), default=list(SERVERS))
    parser.add_argument("--sections", type=lambda s: s.split(","),
                        default=[name for name in SECTIONS if name != "instructions"])
    args = parser.parse_args()
    for name in args.sections:
        print(f"## {name}")
        SECTIONS[name](args)
    return None


if __name__ == "__main__":
    main()
