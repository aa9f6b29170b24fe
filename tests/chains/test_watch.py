"""`pack chains watch` with a real engine, run as a user runs it: an edit of one chainlet's class
reloads that chainlet alone (same containers, no rebuild), an edit of the module's shared code
reloads every chainlet, a chain file that no longer loads keeps the chain serving, SIGTERM
removes every chainlet's container."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.docker_env import BASE_IMAGE, free_port_block, remove_truss_artifacts, stop_pack, unique

pytestmark = pytest.mark.docker
REPO_ROOT = Path(__file__).resolve().parents[2]

CHAIN = '''\
import truss_chains as chains

GREETING = "hi"


class Shout(chains.ChainletBase):
    async def run_remote(self, text: str) -> str:
        return text.upper() + "!"


@chains.mark_entrypoint("{name}")
class Greeter(chains.ChainletBase):
    def __init__(self, shout: Shout = chains.depends(Shout)) -> None:
        self._shout = shout

    async def run_remote(self, name: str) -> str:
        return f"{{GREETING}} " + await self._shout.run_remote(name)
'''


class Events:
    def __init__(self, proc: subprocess.Popen[str]):
        self.proc = proc
        self.seen: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event["event"] != "logline":
                    self._queue.put(event)
        self._queue.put(None)

    def take(self, count: int, timeout: float = 300.0) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            try:
                event = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"{len(got)} of {count} events after {timeout:.0f} s: {got}; before: {self.seen}")
            if event is None:
                pytest.fail(f"pack chains watch ended (exit {self.proc.wait()}): {got}; before: {self.seen}")
            got.append(event)
        self.seen += got
        return got


def call(port: int, name: str) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/model:predict",
                                     data=json.dumps({"name": name}).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def chain_watch(base_image: str, docker_client: Any, tmp_path: Path) -> Iterator[tuple[Path, int, Events]]:
    source = tmp_path / "code" / "small_chain.py"
    source.parent.mkdir()
    source.write_text(CHAIN.format(name=unique("pack-cw")))
    out = tmp_path / "trusses"
    port = free_port_block(2)
    proc = subprocess.Popen([sys.executable, "-m", "packager.cli.main", "chains", "watch", str(source), "--json",
                             "--out", str(out), "--base-port", str(port), "--base-image", BASE_IMAGE,
                             "--progress", "quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO_ROOT)
    try:
        yield source, port, Events(proc)
    finally:
        stop_pack(proc)
        remove_truss_artifacts(docker_client, out.glob("*/chainlet_*/config.yaml"))


def test_an_edit_reaches_only_the_chainlets_whose_code_changed(chain_watch: tuple[Path, int, Events],
                                                                 docker_client: Any) -> None:
    source, port, events = chain_watch
    started = events.take(5)  # the chain's build, then each chainlet's build and serving
    serving = {e["chainlet"]: e["container"] for e in started if e["event"] == "serving"}
    assert set(serving) == {"Shout", "Greeter"}, started
    ids = {name: docker_client.containers.get(c).id for name, c in serving.items()}
    assert call(port + 1, "bob") == "hi BOB!"

    # Shout's class: Shout alone reloads.
    source.write_text(source.read_text().replace('+ "!"', '+ "!!"'))
    [reloaded] = events.take(1)
    assert (reloaded["chainlet"], reloaded["event"], reloaded["generation"]) == ("Shout", "reloaded", 2), reloaded
    assert call(port + 1, "bob") == "hi BOB!!"

    # Code outside the chainlet classes: every chainlet reloads, dependencies first.
    source.write_text(source.read_text().replace('GREETING = "hi"', 'GREETING = "hello"'))
    both = events.take(2)
    assert [(e["chainlet"], e["event"]) for e in both] == [("Shout", "reloaded"), ("Greeter", "reloaded")], both
    assert call(port + 1, "bob") == "hello BOB!!"
    # The same containers throughout, nothing rebuilt.
    assert {name: docker_client.containers.get(c).id for name, c in serving.items()} == ids

    # A chain file that no longer loads: said, and the chain keeps serving.
    good = source.read_text()
    source.write_text(good.replace("class Shout(chains.ChainletBase):", "class Shout(chains.ChainletBase)"))
    [failed] = events.take(1)
    assert failed["event"] == "notapplied" and "small_chain.py" in failed["message"], failed
    assert call(port + 1, "bob") == "hello BOB!!"
    source.write_text(good.replace('"hello"', '"hey"'))
    assert [(e["chainlet"], e["event"]) for e in events.take(2)] == [("Shout", "reloaded"), ("Greeter", "reloaded")]
    assert call(port + 1, "bob") == "hey BOB!!"


def test_sigterm_removes_every_chainlet(chain_watch: tuple[Path, int, Events], docker_client: Any) -> None:
    import docker

    _source, port, events = chain_watch
    containers = [e["container"] for e in events.take(5) if e["event"] == "serving"]
    assert len(containers) == 2
    events.proc.send_signal(signal.SIGTERM)
    assert events.proc.wait(timeout=60) == 130
    for name in containers:
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(name)
    with pytest.raises(urllib.error.URLError):
        call(port + 1, "bob")
