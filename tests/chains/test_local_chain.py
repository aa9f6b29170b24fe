"""End to end without Docker: every chainlet of a generated chain runs as its own process of
pack's in-image runtime (`pack chains run --no-docker`), calling its dependencies over real HTTP:
a retry after a dependency fails once, a remote exception surfacing with its traceback, a stream
with item boundaries intact, and a chainlet whose __init__ ran after its weights were verified."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from packager.chains_codegen import render_chain
from packager.chains_codegen.local_run import start_local
from packager.runtime.manifest import Digest, Entry, Manifest, Revision, Source
from tests.fixtures.range_server import RangeServer

CHAIN = """
    import hashlib
    from typing import AsyncIterator

    import truss_chains as chains
    from truss import truss_config


    class E2EWeights(chains.ChainletBase):
        remote_config = chains.RemoteConfig(assets=chains.Assets(cached=[truss_config.ModelRepo(
            repo_id="org/weights", revision="main", use_volume=True, volume_folder="w")]))

        def __init__(self, context: chains.DeploymentContext = chains.depends_context()) -> None:
            # No waiting here: the generated load() blocked on the prefetch before this runs.
            path = context.data_dir.parent / "model_cache" / "w" / "weights.bin"
            self.digest = hashlib.sha256(path.read_bytes()).hexdigest()

        async def run_remote(self) -> str:
            return self.digest


    class E2EAdder(chains.ChainletBase):
        async def run_remote(self, x: int, k: int = 10) -> int:
            return x + k


    class E2EBoom(chains.ChainletBase):
        def run_remote(self, s: str) -> str:
            raise ValueError(f"boom: {s}")


    class E2EStreamer(chains.ChainletBase):
        async def run_remote(self, items: list[str]) -> AsyncIterator[str]:
            for item in items:
                yield item


    @chains.mark_entrypoint
    class E2EEntry(chains.ChainletBase):
        def __init__(self, weights=chains.depends(E2EWeights), adder=chains.depends(E2EAdder, retries=1),
                     boom=chains.depends(E2EBoom, retries=3), streamer=chains.depends(E2EStreamer)) -> None:
            self.weights, self.adder, self.boom, self.streamer = weights, adder, boom, streamer

        async def run_remote(self, mode: str, items: list[str]) -> tuple[str, int, list[str]]:
            if mode == "boom":
                return "", 0, [self.boom.run_remote("kaput")]
            streamed = [item async for item in self.streamer.run_remote(items)]
            return await self.weights.run_remote(), await self.adder.run_remote(1), streamed
"""


class FlakyProxy:
    """A gateway in front of one chainlet: answers 503 to the first request, then forwards."""

    def __init__(self) -> None:
        self.target = ""
        self.seen = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.seen += 1
                if outer.seen == 1:
                    data, status = b'{"error": "Model with name model is not ready."}', 503
                else:
                    request = urllib.request.Request(outer.target, data=body, headers={
                        "Content-Type": self.headers.get("content-type", "application/json")})
                    with urllib.request.urlopen(request, timeout=30) as response:
                        data, status = response.read(), response.status
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/models/model:predict"


def _post(url: str, payload: dict) -> tuple[int, object]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def running_chain(chain_file, tmp_path):
    weights = hashlib.sha256(b"w" * 3_000_000).digest() * 100_000  # 3.2 MB
    with RangeServer() as server:
        server.files["/w/weights.bin"] = weights
        server.faults.stall = (1, 1.5)  # the download takes > 1.5 s: __init__ would lose the race
        manifest = Manifest((Entry(
            source=Source("https", server.base_url, server.url("/w/weights.bin")),
            revision=Revision("", "0" * 40), size=len(weights),
            hash=Digest("sha256", hashlib.sha256(weights).hexdigest()),
            destination="/app/model_cache/w/weights.bin", volume_folder="w"),))
        chain = render_chain(chain_file(CHAIN), tmp_path / "out")
        proxy = FlakyProxy()
        from packager.chains_codegen.local_run import free_port

        ports = {c.name: free_port() for c in chain.chainlets}
        proxy.target = f"http://127.0.0.1:{ports['E2EAdder']}/v1/models/model:predict"
        run = start_local(chain, workdir=tmp_path / "run", ports=ports,
                          manifests={"E2EWeights": manifest.to_json()},
                          url_overrides={"E2EAdder": proxy.url}, timeout=60)
        try:
            yield run, proxy, hashlib.sha256(weights).hexdigest()
        finally:
            run.stop()
            proxy.httpd.shutdown()


def test_chain_over_http(running_chain):
    run, proxy, digest = running_chain
    items = ["héllo ", "wörld", "", "✓✓ ", "end"]
    status, body = _post(run.entrypoint_url, {"mode": "all", "items": items})
    assert status == 200, body
    got_digest, added, streamed = body
    # __init__ read the whole file, verified in place before it ran.
    assert got_digest == digest
    # the adder failed once (503 at its gateway) and the retry succeeded; k's default applied.
    assert added == 11
    assert proxy.seen == 2
    # item boundaries (and the empty item) survived the network.
    assert streamed == items
    timeline = run.chainlets["E2EWeights"].logs()
    assert "model load failed" not in timeline

    status, body = _post(run.entrypoint_url, {"mode": "boom", "items": []})
    assert status == 500
    error = body["error"]
    assert error["exception_cls_name"] == "ValueError"
    message = error["exception_message"]
    assert "Error calling dependency Chainlet `E2EBoom`, HTTP status=500" in message
    assert "Chainlet-Traceback (most recent call last):" in message
    assert 'raise ValueError(f"boom: {s}")' in message
    assert "ValueError: boom: kaput" in message
    # the application error was not retried (retries=3), only logged once by the callee.
    assert run.chainlets["E2EBoom"].logs().count("run_remote raised ValueError") == 1
