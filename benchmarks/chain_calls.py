"""Chain calls between chainlets: `python benchmarks/chain_calls.py [--calls 2000] [--clients pooled,before]`.

A dependency chainlet (`Echo`, async run_remote returning its input) and an entrypoint that calls
it run as processes of pack's in-image runtime on 127.0.0.1 (`pack chains run --no-docker`).
This process calls Echo through the stub's session (chains.remote_session.RemoteSession), as a
chainlet does, with each client:

* pooled: the client chains uses now (keep-alive connections, pooled per dependency);
* before: the client chains used before pooling (a new connection per call; a copy of it is kept
  in benchmarks/chain_calls_before.py), behind the same session code.

Printed per client and call kind (async sequential, async with 16 in flight, sync sequential):
latency p50/p99 of one call, and the connections opened over all its calls (20 warm-up calls
included), also per 1,000 calls: counted where every client opens one, asyncio's
loop.create_connection and socket.create_connection, in this process. The
last rows time a whole request to the entrypoint (one chain hop inside the chainlet's own process,
whose client is the one chains has now: compare with the figure from a build before pooling).
No assertions: figures only (tests/chains/test_rpc_pool.py checks the behaviour).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import chains  # noqa: E402
from chains.remote_session import RemoteSession  # noqa: E402
from packager.chains_codegen import render_chain  # noqa: E402
from packager.chains_codegen.local_run import PREDICT_PATH, LocalChainRun, start_local  # noqa: E402

CHAIN = '''
import truss_chains as chains


class Echo(chains.ChainletBase):
    async def run_remote(self, x: int) -> int:
        return x


@chains.mark_entrypoint
class BenchEntry(chains.ChainletBase):
    """One chain hop per request: what the entrypoint row times."""

    def __init__(self, echo=chains.depends(Echo, retries=0)) -> None:
        self.echo = echo

    async def run_remote(self, x: int) -> int:
        return await self.echo.run_remote(x=x)
'''
HEADER = ("client", "calls", "p50 ms", "p99 ms", "connections opened", "per 1,000 calls")
WARMUP_CALLS = 20  # timed apart: imports, lazy set-up (their connections are counted)


class ConnectionCount:
    """Connections this process opens: every client goes through one of these two calls."""

    def __init__(self) -> None:
        self.opened = 0

    @contextlib.contextmanager
    def counting(self, loop: asyncio.AbstractEventLoop | None = None) -> Iterator[None]:
        original_socket = socket.create_connection

        def create_connection(*args: Any, **kwargs: Any) -> socket.socket:
            self.opened += 1
            return original_socket(*args, **kwargs)

        socket.create_connection = create_connection  # type: ignore[assignment]
        original_loop = loop.create_connection if loop is not None else None
        if loop is not None:
            async def loop_create_connection(*args: Any, **kwargs: Any) -> Any:
                self.opened += 1
                return await original_loop(*args, **kwargs)  # type: ignore[misc]

            loop.create_connection = loop_create_connection  # type: ignore[method-assign]
        try:
            yield
        finally:
            socket.create_connection = original_socket
            if loop is not None:
                del loop.create_connection  # the instance attribute: the class's method again


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _session(url: str) -> RemoteSession:
    return RemoteSession(chains.DeployedServiceDescriptor(
        name="Echo", display_name="Echo", options=chains.RPCOptions(retries=0), predict_url=url), None)


SESSIONS: dict[str, Callable[[str], RemoteSession]] = {"pooled": _session}
try:
    from benchmarks.chain_calls_before import before_session
except ImportError:  # run from a tree without the copy of the old client
    pass
else:
    SESSIONS["before"] = before_session


def async_calls(session: RemoteSession, calls: int, in_flight: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    count = ConnectionCount()

    async def worker(n: int) -> None:
        for i in range(n):
            started = time.perf_counter()
            assert await session.call_async({"x": i}) == i
            latencies.append(time.perf_counter() - started)

    async def main() -> None:
        with count.counting(asyncio.get_running_loop()):
            await worker(WARMUP_CALLS)
            latencies.clear()
            await asyncio.gather(*[worker(calls // in_flight) for _ in range(in_flight)])

    asyncio.run(main())
    return latencies, count.opened


def sync_calls(session: RemoteSession, calls: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    count = ConnectionCount()
    with count.counting():
        for i in range(WARMUP_CALLS):
            session.call_sync({"x": i})
        for i in range(calls):
            started = time.perf_counter()
            assert session.call_sync({"x": i}) == i
            latencies.append(time.perf_counter() - started)
    return latencies, count.opened


def entrypoint_calls(run: LocalChainRun, calls: int) -> list[float]:
    """Whole requests to the entrypoint over one keep-alive connection: the chain hop inside."""
    conn = http.client.HTTPConnection("127.0.0.1", run.entrypoint.port, timeout=30)
    latencies = []
    try:
        for i in range(calls + WARMUP_CALLS):
            started = time.perf_counter()
            conn.request("POST", PREDICT_PATH, body=json.dumps({"x": i}),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200 and json.loads(body) == i, body
            if i >= WARMUP_CALLS:
                latencies.append(time.perf_counter() - started)
    finally:
        conn.close()
    return latencies


@contextlib.contextmanager
def running_chain() -> Iterator[LocalChainRun]:
    with tempfile.TemporaryDirectory(prefix="pack-bench-chain-") as tmp:
        workspace = Path(tmp) / "ws"
        workspace.mkdir()
        (workspace / "bench_chain.py").write_text(CHAIN)
        chain = render_chain(workspace / "bench_chain.py", Path(tmp) / "out")
        with start_local(chain, workdir=Path(tmp) / "run") as run:
            yield run


def _row(name: str, latencies: list[float], opened: int | None) -> tuple[str, ...]:
    """Latencies of the timed calls; connections of all calls, the warm-up's included."""
    made = len(latencies) + WARMUP_CALLS
    return (name, str(len(latencies)), f"{percentile(latencies, 0.5) * 1000:.3f}",
            f"{percentile(latencies, 0.99) * 1000:.3f}", "-" if opened is None else str(opened),
            "-" if opened is None else f"{opened * 1000 / made:.1f}")


def chain_call_rows(clients: list[str], calls: int = 2000) -> list[tuple[str, ...]]:
    """HEADER's columns for each client and call kind, then the entrypoint row."""
    rows: list[tuple[str, ...]] = []
    with running_chain() as run:
        url = run.chainlets["Echo"].url + PREDICT_PATH
        for name in clients:
            latencies, opened = async_calls(SESSIONS[name](url), calls, 1)
            rows.append(_row(f"{name}: async", latencies, opened))
            latencies, opened = async_calls(SESSIONS[name](url), calls, 16)
            rows.append(_row(f"{name}: async, 16 in flight", latencies, opened))
            latencies, opened = sync_calls(SESSIONS[name](url), calls)
            rows.append(_row(f"{name}: sync", latencies, opened))
        rows.append(_row("entrypoint request (one hop inside)", entrypoint_calls(run, calls), None))
    return rows


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(" | ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--clients", type=lambda s: s.split(","), default=list(SESSIONS))
    args = parser.parse_args()
    print_table(HEADER, chain_call_rows(args.clients, args.calls))


if __name__ == "__main__":
    main()
