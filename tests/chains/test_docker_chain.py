"""`pack chains run` with Docker: every chainlet image built by pack's pipeline, started on the
host network with distinct ports, dependency URLs wired, the entrypoint answering over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from packager.cli.main import cli, main
from tests.fixtures.docker_env import base_image, docker_client, docker_info, free_port  # noqa: F401

pytestmark = pytest.mark.docker

CHAIN = """
    from typing import AsyncIterator

    import truss_chains as chains


    class DockAdder(chains.ChainletBase):
        async def run_remote(self, x: int, k: int = 10) -> int:
            return x + k


    class DockBoom(chains.ChainletBase):
        async def run_remote(self, s: str) -> str:
            raise KeyError(s)


    class DockStreamer(chains.ChainletBase):
        async def run_remote(self, items: list[str]) -> AsyncIterator[str]:
            for item in items:
                yield item


    @chains.mark_entrypoint("dock-chain")
    class DockEntry(chains.ChainletBase):
        def __init__(self, adder=chains.depends(DockAdder, retries=2), boom=chains.depends(DockBoom),
                     streamer=chains.depends(DockStreamer)) -> None:
            self.adder, self.boom, self.streamer = adder, boom, streamer

        async def run_remote(self, mode: str, items: list[str]) -> tuple[int, list[str]]:
            if mode == "boom":
                await self.boom.run_remote("nope")
            return await self.adder.run_remote(1), [i async for i in self.streamer.run_remote(items)]
"""


def _post(url: str, payload: dict) -> tuple[int, object]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_pack_chains_run(chain_file, tmp_path, base_image, docker_client, capsys):  # noqa: F811
    from packager.chains_codegen import render_chain
    from packager.cli.chains_cmds import chains_group

    if "chains" not in cli.commands:
        cli.add_command(chains_group)
    source = chain_file(CHAIN)
    port = free_port()
    names = [f"pack-chain-{c.model_name.lower()}" for c in render_chain(source, tmp_path / "names").chainlets]
    try:
        code = main(["chains", "run", str(source), "-o", str(tmp_path / "out"), "--base-image", base_image,
                     "--base-port", str(port), "--detach", "--progress", "plain", "--timeout", "300"])
        out = capsys.readouterr().out
        assert code == 0, out
        entry_url = next(line.split()[1] for line in out.splitlines() if line.startswith("entrypoint "))
        assert entry_url == f"http://127.0.0.1:{port + 3}/v1/models/model:predict"
        status, body = _post(entry_url, {"mode": "ok", "items": ["héllo ", "", "wörld"]})
        assert (status, body) == (200, [11, ["héllo ", "", "wörld"]])
        status, body = _post(entry_url, {"mode": "boom", "items": []})
        assert status == 500
        assert body["error"]["exception_cls_name"] == "KeyError"
        assert "Error calling dependency Chainlet `DockBoom`" in body["error"]["exception_message"]
        assert "raise KeyError(s)" in body["error"]["exception_message"]
    finally:
        import docker

        for name in names:
            try:
                docker_client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
