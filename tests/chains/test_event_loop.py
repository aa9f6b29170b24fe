"""chains-compat §11 defect 10: a sync dependency called from an async chainlet must not block
the event loop. Generated stubs of sync dependencies offer `await stub.run_remote_async(...)`
(the async HTTP client); in run_local, `run_remote_async` runs a sync run_remote in a worker
thread; a sync stub call made on the loop's thread says where it happened."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import chains
from chains.loading import load_chain
from packager.chains_codegen import render_chain

CHAIN = """
    import time

    import truss_chains as chains


    class SlowSync(chains.ChainletBase):
        def run_remote(self, x: int, k: int = 100) -> int:
            time.sleep(0.3)
            return x + k


    class AsyncDep(chains.ChainletBase):
        async def run_remote(self, x: int) -> int:
            return -x


    @chains.mark_entrypoint
    class LoopEntry(chains.ChainletBase):
        def __init__(self, slow=chains.depends(SlowSync), other=chains.depends(AsyncDep)) -> None:
            self.slow, self.other = slow, other

        async def run_remote(self, n: int) -> list[int]:
            import asyncio

            return list(await asyncio.gather(*(self.slow.run_remote_async(i) for i in range(n)),
                                              self.other.run_remote_async(1)))
"""


class SlowServer:
    """Answers every POST after 0.3 s with {x} + k, like SlowSync would."""

    def __init__(self) -> None:
        outer = self
        self.seen = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                outer.seen += 1
                time.sleep(0.3)
                data = json.dumps(body["x"] + body.get("k", 100)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/models/model:predict"


async def _max_loop_stall(work) -> tuple[object, float]:
    """Run `work()` while a ticker measures the longest gap between its ticks (20 ms apart)."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.02)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    try:
        result = await work()
    finally:
        done.set()
        await task
    return result, max(gaps)


@pytest.fixture
def generated_entry(chain_file, tmp_path):
    chain = render_chain(chain_file(CHAIN), tmp_path / "out")
    entry = chain.chainlet("LoopEntry").path
    sys.path.insert(0, str(entry / "packages"))
    try:
        name = f"generated_loop_entry_{id(chain)}"
        spec = importlib.util.spec_from_file_location(name, entry / "model" / "model.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(entry / "packages"))
        sys.modules.pop(name, None)


def test_generated_sync_stub_offers_an_async_call_that_does_not_block_the_loop(generated_entry):
    server = SlowServer()
    try:
        stub = generated_entry.SlowSync.from_url(server.url, None)
        assert asyncio.iscoroutinefunction(stub.run_remote_async)
        assert not asyncio.iscoroutinefunction(stub.run_remote)  # Truss code calls it unchanged

        async def four_calls():
            start = time.monotonic()
            results = await asyncio.gather(*(stub.run_remote_async(i) for i in range(4)),
                                           stub.run_remote_async(5, k=1))
            return results, time.monotonic() - start

        (results, elapsed), stall = asyncio.run(_max_loop_stall(four_calls))
        assert results == [100, 101, 102, 103, 6]
        assert elapsed < 0.9  # concurrent, not 5 x 0.3 s in a row
        assert stall < 0.2, stall  # the loop kept running while the calls waited
        assert server.seen == 5
        # The async stub of an async dependency answers to the same name.
        assert generated_entry.AsyncDep.run_remote_async is generated_entry.AsyncDep.run_remote
    finally:
        server.httpd.shutdown()


def test_a_sync_stub_call_on_the_loop_says_where_and_what_to_write(generated_entry, caplog):
    server = SlowServer()
    try:
        stub = generated_entry.SlowSync.from_url(server.url, None)

        async def blocking():
            return stub.run_remote(1)

        with caplog.at_level(logging.WARNING, logger="chains.rpc"):
            result, stall = asyncio.run(_max_loop_stall(blocking))
            asyncio.run(_max_loop_stall(blocking))
        assert result == 101
        assert stall >= 0.25  # what defect 10 is about: the loop stood still for the call
        warnings = [r.getMessage() for r in caplog.records if "run_remote_async" in r.getMessage()]
        assert len(warnings) == 1, warnings  # once per dependency
        assert f"{__file__}:" in warnings[0] and "Chainlet `SlowSync`" in warnings[0]
        # A sync stub called from a thread (a sync chainlet's run_remote) warns about nothing.
        caplog.clear()
        fresh = generated_entry.SlowSync.from_url(server.url, None)
        assert fresh.run_remote(2) == 102
        assert not caplog.records
    finally:
        server.httpd.shutdown()


@pytest.mark.parametrize("strict", [False, True])
def test_run_local_runs_a_sync_dependency_in_a_thread(chain_file, strict):
    module = load_chain(chain_file(CHAIN)).module

    async def entry_call():
        start = time.monotonic()
        with chains.run_local(strict=strict):
            entry = module.LoopEntry()
            result = await entry.run_remote(4)
        return result, time.monotonic() - start

    (result, elapsed), stall = asyncio.run(_max_loop_stall(entry_call))
    assert result == [100, 101, 102, 103, -1]
    assert elapsed < 0.9  # four 0.3 s sync calls overlapped in worker threads
    assert stall < 0.2, stall
