"""SIGTERM to a foreground `pack chains run` stops every chainlet, as Ctrl-C does: after the chain
is ready and while its chainlets are still starting, with local processes (--no-docker) and with
containers. `pack` runs as a real process; the chainlets are found by pid (every descendant of
pack in /proc) or by container name, and checked gone afterwards (containers stopped and
removed).

Order of events, never timings: SIGTERM is sent once the chainlets exist (ready, or blocked in
__init__ by an environment variable that the test passes with -e)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.docker_env import free_port_block, remove_truss_artifacts
from tests.fixtures.processes import descendants

REPO = Path(__file__).resolve().parents[2]
BLOCK = "SIGTEST_BLOCK_INIT"
CHAIN = f"""
    import os
    import time

    import truss_chains as chains


    class SigDep(chains.ChainletBase):
        def __init__(self) -> None:
            if os.environ.get("{BLOCK}"):
                time.sleep(3600)  # never ready: the chain is still starting when SIGTERM comes

        async def run_remote(self, x: int) -> int:
            return x + 1


    @chains.mark_entrypoint
    class SigEntry(chains.ChainletBase):
        def __init__(self, dep=chains.depends(SigDep)) -> None:
            self.dep = dep

        async def run_remote(self, x: int) -> int:
            return await self.dep.run_remote(x)
"""
WAIT_S = 300  # a bound against hanging, never asserted on


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class Pack:
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done():
            if self.proc.poll() is not None:
                raise AssertionError(f"pack exited ({self.proc.returncode}) before {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {WAIT_S} s:\n{self.output()}")
            time.sleep(0.1)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(WAIT_S)


@pytest.fixture
def chain_source(tmp_path: Path) -> Path:
    source = tmp_path / "ws" / "sig_chain.py"
    source.parent.mkdir()
    source.write_text(textwrap.dedent(CHAIN))
    return source


class Packs:
    """`pack chains run ...` processes, and every chainlet pid seen under them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Pack] = []
        self.seen: set[int] = set()

    def start(self, *args: str) -> Pack:
        log = self.root / f"pack-{len(self.started)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "packager.cli.main", "chains", "run", *args],
                                    cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        self.started.append(Pack(proc, log))
        return self.started[-1]

    def chainlets(self, run: Pack) -> set[int]:
        found = descendants(run.proc.pid)
        self.seen |= found
        return found

    def kill_all(self) -> None:
        for run in self.started:
            if run.proc.poll() is None:
                self.chainlets(run)
                run.proc.kill()
                run.proc.wait()
        for pid in self.seen:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def packs(tmp_path: Path) -> Iterator[Packs]:
    """At teardown nothing a test's pack started survives, whatever the test found."""
    packs = Packs(tmp_path)
    yield packs
    packs.kill_all()


def test_sigterm_stops_every_chainlet_process_of_a_ready_chain(chain_source, packs, tmp_path) -> None:
    run = packs.start(str(chain_source), "-o", str(tmp_path / "out"), "--no-docker", "--base-port",
                      str(free_port_block(2)), "--timeout", "120")
    run.wait_for("ready chain", lambda: "\nentrypoint " in run.output())
    chainlets = packs.chainlets(run)
    printed = {int(line.split(" pid ")[1].split()[0]) for line in run.output().splitlines() if " pid " in line}
    assert printed == chainlets and len(chainlets) == 2, run.output()
    code = run.terminate()
    assert [pid for pid in chainlets if alive(pid)] == [], run.output()
    assert code == 0, run.output()
    assert "stopping the chain" in run.output()


def test_sigterm_while_chainlets_start_stops_them(chain_source, packs, tmp_path) -> None:
    run = packs.start(str(chain_source), "-o", str(tmp_path / "out"), "--no-docker", "--base-port",
                      str(free_port_block(2)), "--timeout", "600", "-e", f"{BLOCK}=1")
    # Both chainlet processes exist; SigDep's __init__ never returns, so the start is waiting.
    run.wait_for("two chainlet processes", lambda: len(packs.chainlets(run)) >= 2)
    chainlets = packs.chainlets(run)
    assert "entrypoint " not in run.output()
    code = run.terminate()
    assert [pid for pid in chainlets if alive(pid)] == [], run.output()
    assert code == 130, run.output()  # an interrupted start: the Ctrl-C exit code


@pytest.mark.docker
@pytest.mark.parametrize("blocked", [False, True], ids=["ready", "starting"])
def test_sigterm_stops_every_chainlet_container(blocked, chain_source, packs, tmp_path, base_image,
                                                docker_client) -> None:
    import docker

    from packager.chains_codegen import render_chain

    chain = render_chain(chain_source, tmp_path / "names")
    names = [f"pack-chain-{c.model_name.lower()}" for c in chain.chainlets]
    sys.modules.pop("sig_chain", None)

    def container(name: str):
        try:
            return docker_client.containers.get(name)
        except docker.errors.NotFound:
            return None

    def remove_all() -> None:
        for name in names:
            found = container(name)
            if found is not None:
                found.remove(force=True)
        remove_truss_artifacts(docker_client, (tmp_path / "out").glob("*/chainlet_*/config.yaml"))

    remove_all()
    try:
        args = [str(chain_source), "-o", str(tmp_path / "out"), "--base-image", base_image, "--base-port",
                str(free_port_block(2)), "--progress", "plain", "--timeout", "600"]
        run = packs.start(*args, *(["-e", f"{BLOCK}=1"] if blocked else []))
        if blocked:  # the dependency's container runs, never ready; the entrypoint's is not created yet
            dep = names[0]
            run.wait_for(f"container {dep}", lambda: (c := container(dep)) is not None and c.status == "running")
        else:
            run.wait_for("ready chain", lambda: "\nentrypoint " in run.output())
            assert all(container(n).status == "running" for n in names)
        code = run.terminate()
        states = {name: (c.status if (c := container(name)) is not None else "gone") for name in names}
        assert set(states.values()) == {"gone"}, (states, run.output())  # stopped and removed
        assert code == (130 if blocked else 0), run.output()
    finally:
        remove_all()
