"""Websocket chainlets: chains.WebSocketProtocol endpoints as truss_chains 0.18.30 validates them,
the truss generated for one (runtime.transport, the `websocket` method), and a websocket
entrypoint calling an HTTP dependency, its chainlets running as local runtime processes."""

from __future__ import annotations

import re
import time

import pytest
import yaml
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import chains
from chains.loading import load_chain
from packager.chains_codegen import render_chain
from packager.chains_codegen.local_run import start_local
from packager.config import load_config
from packager.plan.build import plan_build
from packager.runtime.manifest import Manifest
from packager.runtime.serving.http_errors import MODEL_ERROR_MESSAGE

CHAIN = """
    import fastapi
    import truss_chains as chains


    class WsAdder(chains.ChainletBase):
        async def run_remote(self, x: int, k: int = 10) -> int:
            return x + k


    @chains.mark_entrypoint
    class WsHead(chains.ChainletBase):
        remote_config = chains.RemoteConfig(options=chains.ChainletOptions(
            transport=chains.WebsocketOptions(ping_interval_seconds=5.0, ping_timeout_seconds=7.0)))

        def __init__(self, adder=chains.depends(WsAdder)) -> None:
            self._adder = adder

        async def run_remote(self, websocket: chains.WebSocketProtocol) -> None:
            print("HEAD connected:", await websocket.is_connected(), websocket.headers.get("x-test"), flush=True)
            try:
                while True:
                    text = await websocket.receive()
                    if text == "bytes":
                        await websocket.send_bytes(await websocket.receive_bytes())
                    elif text == "json":
                        await websocket.send_json({"got": await websocket.receive_json()})
                    elif text == "raise":
                        raise RuntimeError("the chainlet failed")
                    elif text == "done":
                        return
                    else:
                        await websocket.send_text(str(await self._adder.run_remote(int(text))))
            except fastapi.WebSocketDisconnect as exc:
                print(f"HEAD disconnect code={exc.code}", flush=True)
"""

BAD_CHAIN = """
    from typing import AsyncIterator

    import truss_chains as chains


    class TwoArgs(chains.ChainletBase):
        async def run_remote(self, websocket: chains.WebSocketProtocol, n: int) -> None:
            pass


    class Sync(chains.ChainletBase):
        def run_remote(self, websocket: chains.WebSocketProtocol) -> None:
            pass


    class Returns(chains.ChainletBase):
        async def run_remote(self, websocket: chains.WebSocketProtocol) -> str:
            return ""


    class Yields(chains.ChainletBase):
        async def run_remote(self, websocket: chains.WebSocketProtocol) -> AsyncIterator[str]:
            yield ""


    class Output(chains.ChainletBase):
        async def run_remote(self) -> chains.WebSocketProtocol:
            raise NotImplementedError


    class WsLeaf(chains.ChainletBase):
        async def run_remote(self, websocket: chains.WebSocketProtocol) -> None:
            pass


    class UsesWs(chains.ChainletBase):
        def __init__(self, leaf=chains.depends(WsLeaf)) -> None:
            pass

        async def run_remote(self) -> None:
            pass


    class HttpWithWsOptions(chains.ChainletBase):
        remote_config = chains.RemoteConfig(options=chains.ChainletOptions(transport=chains.WebsocketOptions()))

        async def run_remote(self) -> None:
            pass


    class WsWithHttpOptions(chains.ChainletBase):
        remote_config = chains.RemoteConfig(options=chains.ChainletOptions(transport=chains.HTTPOptions()))

        async def run_remote(self, websocket: chains.WebSocketProtocol) -> None:
            pass
"""


def test_websocket_endpoints_are_validated_as_in_truss_chains(chain_file):
    path = chain_file(BAD_CHAIN)
    with pytest.raises(chains.ChainsUsageError) as info:
        load_chain(path, "UsesWs")
    text = str(info.value)
    expected = [
        ("TwoArgs.run_remote", "IO_TYPE_ERROR", "When using a websocket as input, no other arguments are allowed."),
        ("Sync.run_remote", "IO_TYPE_ERROR", "Websocket endpoints must be async."),
        ("Returns.run_remote", "IO_TYPE_ERROR", "Websocket endpoints must have `None` as return type."),
        ("Yields.run_remote", "IO_TYPE_ERROR", "Websocket endpoints must have `None` as return type."),
        ("Yields.run_remote", "IO_TYPE_ERROR", "Websocket endpoints cannot return iterators"),
        ("Output.run_remote", "IO_TYPE_ERROR", "Websockets cannot be used as output type."),
        ("UsesWs.__init__", "TYPE_ERROR", "uses a websocket. But websockets can only be used in the entrypoint"),
        ("HttpWithWsOptions", "INVALID_CONFIG_ERROR", "WebsocketOptions can only be used for websocket endpoints."),
        ("WsWithHttpOptions", "INVALID_CONFIG_ERROR", "must be `WebsocketOptions`, got `HTTPOptions`"),
    ]
    for where, kind, fragment in expected:
        assert re.search(rf"{re.escape(str(path))}:\d+ \({re.escape(where)}\) \[kind: {kind}\]: .*"
                         + re.escape(fragment), text), (where, fragment, text)
    assert text.count("[kind:") == len(expected), text


def test_the_generated_truss_serves_websocket(chain_file, tmp_path):
    chain = render_chain(chain_file(CHAIN), tmp_path / "out")
    head = chain.chainlet("WsHead").path
    config = yaml.safe_load((head / "config.yaml").read_text())
    assert config["runtime"]["transport"] == {"kind": "websocket", "ping_interval_seconds": 5.0,
                                              "ping_timeout_seconds": 7.0}
    code = (head / "model" / "model.py").read_text()
    assert "async def websocket(self, websocket: Any) -> None:" in code
    assert "def predict(" not in code and "WsHeadInput" not in code
    assert "class WsAdder(rpc.StubBase)" in code  # its HTTP dependency keeps its stub
    adder = yaml.safe_load((chain.chainlet("WsAdder").path / "config.yaml").read_text())
    assert "transport" not in adder["runtime"]
    # What `pack check` and the build plan make of it: valid, and the protocol package installed.
    loaded = load_config(head)
    assert loaded.warnings == () and loaded.model_class is not None and loaded.model_class.defines_websocket
    plan = plan_build(loaded, Manifest(()))
    assert any(line.startswith("websockets") for line in plan.sources.server_requirements)
    assert not any(line.startswith("websockets") for line in
                   plan_build(load_config(chain.chainlet("WsAdder").path), Manifest(())).sources.server_requirements)


def test_a_websocket_entrypoint_calls_its_dependency(chain_file, tmp_path):
    chain = render_chain(chain_file(CHAIN), tmp_path / "out")
    run = start_local(chain, workdir=tmp_path / "run", timeout=60)
    try:
        url = run.entrypoint_url
        assert url == f"ws://127.0.0.1:{run.entrypoint.port}/v1/websocket"
        with connect(url, proxy=None, open_timeout=10, additional_headers={"X-Test": "hdr"}) as ws:
            ws.send("1")
            assert ws.recv(timeout=30) == "11"  # through WsAdder over HTTP
            ws.send("bytes")
            ws.send(b"\x00\xff")
            assert ws.recv(timeout=30) == b"\x00\xff"
            ws.send("json")
            ws.send('{"a": [1, 2]}')
            assert ws.recv(timeout=30) == '{"got":{"a":[1,2]}}'
            ws.send("done")
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000

        with connect(url, proxy=None, open_timeout=10) as ws:
            ws.send("raise")
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=30)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, MODEL_ERROR_MESSAGE)

        with connect(url, proxy=None, open_timeout=10) as ws:
            ws.send("2")
            assert ws.recv(timeout=30) == "12"
            ws.close(4002)
        deadline = time.monotonic() + 10
        while "HEAD disconnect code=4002" not in run.entrypoint.logs():
            assert time.monotonic() < deadline, run.entrypoint.logs()
            time.sleep(0.05)
        logs = run.entrypoint.logs()
        assert "HEAD connected: True hdr" in logs
        assert "RuntimeError: the chainlet failed" in logs
    finally:
        run.stop()
