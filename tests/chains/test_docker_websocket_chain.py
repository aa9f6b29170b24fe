"""`pack chains run` with Docker for a websocket entrypoint: both chainlet images built by pack's
pipeline and started on the host network; the entrypoint, a `WebSocketProtocol` chainlet written
against fastapi as on Baseten, is served at /v1/websocket (the CLI prints its ws:// URL) and calls
its HTTP dependency for each message; a failure inside it closes the socket with 1011."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from packager.runtime.serving.http_errors import MODEL_ERROR_MESSAGE
from tests.e2e.conftest import pack_cli
from tests.fixtures.docker_env import free_port_block, remove_truss_artifacts

pytestmark = pytest.mark.docker

CHAIN = """
    import fastapi
    import truss_chains as chains


    class DockWsCounter(chains.ChainletBase):
        async def run_remote(self, text: str) -> int:
            return len(text)


    @chains.mark_entrypoint
    class DockWsHead(chains.ChainletBase):
        def __init__(self, counter=chains.depends(DockWsCounter)) -> None:
            self._counter = counter

        async def run_remote(self, websocket: chains.WebSocketProtocol) -> None:
            try:
                async for text in await websocket.iter_text():
                    if text == "fail":
                        raise ValueError("asked to fail")
                    if text == "done":
                        await websocket.close(code=1000, reason="done")
                        return
                    await websocket.send_json({"text": text, "length": await self._counter.run_remote(text)})
            except fastapi.WebSocketDisconnect:
                pass
"""


@pytest.fixture(scope="module")
def entry_url(base_image, docker_client, tmp_path_factory) -> Iterator[str]:  # noqa: F811
    root = tmp_path_factory.mktemp("dock-ws-chain")
    source = root / "ws" / "dock_ws_chain.py"
    source.parent.mkdir()
    source.write_text(textwrap.dedent(CHAIN))
    port = free_port_block(2)
    try:  # as a user runs it, detached: the containers outlive the command
        ran = pack_cli("chains", "run", str(source), "-o", str(root / "out"), "--base-image", base_image,
                       "--base-port", str(port), "--detach", "--progress", "plain", "--timeout", "300")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        yield next(line.split()[1] for line in ran.stdout.splitlines() if line.startswith("entrypoint "))
    finally:
        remove_truss_artifacts(docker_client, (root / "out").glob("*/chainlet_*/config.yaml"))


def test_the_websocket_entrypoint_calls_its_dependency_per_message(entry_url: str) -> None:
    assert entry_url.startswith("ws://127.0.0.1:") and entry_url.endswith("/v1/websocket")
    outcomes = []
    for last in ("done", "fail"):
        with connect(entry_url, proxy=None, open_timeout=30) as ws:
            for text, length in (("héllo", 5), ("", 0)):
                ws.send(text)
                assert ws.recv(timeout=60) == f'{{"text":"{text}","length":{length}}}'
            ws.send(last)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=60)
            outcomes.append(closed.value.rcvd and (closed.value.rcvd.code, closed.value.rcvd.reason))
    assert outcomes == [(1000, "done"), (1011, MODEL_ERROR_MESSAGE)]
