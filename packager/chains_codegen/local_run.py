"""Running a generated chain as local processes of pack's runtime (no Docker): each chainlet
gets an app dir laid out like /app, its own port on 127.0.0.1, and the dependency URLs through
PACK_CHAINS_DYNAMIC_CONFIG. Used by `pack chains run --no-docker` and the tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import packager
from packager import constants
from packager.config import load_config
from packager.interrupts import signals_held

from .generate import ChainletTruss, GeneratedChain

PREDICT_PATH = constants.PREDICT_PATH
READY_PATH = constants.READINESS_PATH
STOP_WAIT_S = 10.0  # after SIGTERM, before SIGKILL


class ChainStartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dynamic_config(chain: GeneratedChain, ports: dict[str, int]) -> dict[str, dict[str, str]]:
    """What /etc/b10_dynamic_config/dynamic_chainlet_config holds, for chainlets on this host."""
    return chainlet_urls(chain, {c.name: f"http://127.0.0.1:{ports[c.name]}" for c in chain.chainlets})


def chainlet_urls(chain: GeneratedChain, bases: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The dynamic chainlet config for chainlets served at `bases` (chainlet name -> http://host[:port])."""
    return {c.display_name: {"predict_url": f"{bases[c.name]}{PREDICT_PATH}"} for c in chain.chainlets}


@dataclass
class LocalChainlet:
    truss: ChainletTruss
    port: int
    app_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@dataclass
class LocalChainRun:
    chain: GeneratedChain
    workdir: Path
    chainlets: dict[str, LocalChainlet] = field(default_factory=dict)

    @property
    def entrypoint(self) -> LocalChainlet:
        return self.chainlets[self.chain.entrypoint]

    @property
    def entrypoint_url(self) -> str:
        return self.entrypoint.truss.endpoint_url(self.entrypoint.url)

    def stop(self) -> None:
        """SIGTERM to every chainlet at once, then SIGKILL to any still running after STOP_WAIT_S.
        The one way a local chain ends: Ctrl-C, SIGTERM, a failed start, a chainlet that died."""
        with signals_held():
            for chainlet in self.chainlets.values():
                if chainlet.proc is not None and chainlet.proc.poll() is None:
                    chainlet.proc.terminate()
            deadline = time.monotonic() + STOP_WAIT_S
            for chainlet in self.chainlets.values():
                if chainlet.proc is None:
                    continue
                try:
                    chainlet.proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    chainlet.proc.kill()
                    chainlet.proc.wait()

    @property
    def pids(self) -> list[int]:
        return [c.proc.pid for c in self.chainlets.values() if c.proc is not None]

    def __enter__(self) -> LocalChainRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _app_dir(truss: ChainletTruss, target: Path) -> Path:
    app = target / "app"
    shutil.copytree(truss.path, app)
    (app / ".pack").mkdir(exist_ok=True)
    (app / ".pack" / "config.json").write_text(json.dumps(load_config(truss.path).resolved()))
    (app / "data").mkdir(exist_ok=True)
    return app


def _runtime_copy(workdir: Path) -> str:
    """pack's in-image runtime alone (packager/__init__.py, constants.py, runtime/), as the image
    has it at /app/packager: the chainlets import `chains` from their own packages/ only."""
    root = workdir / "pack-runtime"
    source = Path(packager.__file__).resolve().parent
    if not root.exists():
        (root / "packager").mkdir(parents=True)
        for name in ("__init__.py", "constants.py"):
            shutil.copyfile(source / name, root / "packager" / name)
        shutil.copytree(source / "runtime", root / "packager" / "runtime",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return str(root)


def start_local(chain: GeneratedChain, *, workdir: Path | None = None,
                ports: dict[str, int] | None = None, secrets_dir: Path | None = None,
                env: dict[str, str] | None = None, python: str = sys.executable,
                timeout: float = 60.0, manifests: dict[str, str] | None = None,
                url_overrides: dict[str, str] | None = None) -> LocalChainRun:
    """Start every chainlet; return once all answer ready (stop them all on failure).

    manifests: chainlet name -> weights manifest JSON (as `pack render` writes it) to prefetch
    into the chainlet's model_cache, exactly as in the image. url_overrides: display name ->
    predict URL its callers use instead (e.g. a proxy in front of it)."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="pack-chain-run-"))
    ports = dict(ports or {})
    for c in chain.chainlets:
        ports.setdefault(c.name, free_port())
    urls = dynamic_config(chain, ports)
    for display, url in (url_overrides or {}).items():
        urls[display] = {"predict_url": url}
    dynamic = json.dumps(urls)
    run = LocalChainRun(chain, workdir)
    runtime_root = _runtime_copy(workdir)
    try:
        for truss in chain.chainlets:
            target = workdir / truss.name
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            app = _app_dir(truss, target)
            if manifests and truss.name in manifests:
                (app / ".pack" / "weights-manifest.json").write_text(manifests[truss.name])
            for sub in ("state", "dynamic", "secrets"):
                (target / sub).mkdir()
            process_env = {k: v for k, v in os.environ.items()
                           if not k.startswith(("TRUSS_SECRET_", "PACK_"))}
            process_env.update({
                "PYTHONPATH": runtime_root,
                constants.PACK_APP_DIR: str(app),
                constants.PACK_PACKAGES_DIR: str(app / "packages"),
                constants.PACK_STATE_DIR: str(target / "state"),
                constants.PACK_SECRETS_DIR: str(secrets_dir or target / "secrets"),
                constants.PACK_DYNAMIC_CONFIG_DIR: str(target / "dynamic"),
                constants.INFERENCE_SERVER_PORT: str(ports[truss.name]),
                constants.PACK_CHAINS_DYNAMIC_CONFIG: dynamic,
                "PYTHONUNBUFFERED": "1",
            })
            process_env.update(env or {})
            chainlet = LocalChainlet(truss, ports[truss.name], app, target / "server.log")
            with open(chainlet.log_path, "wb") as log, signals_held():
                chainlet.proc = subprocess.Popen(
                    [python, "-m", "packager.runtime.entrypoint"], env=process_env, stdout=log,
                    stderr=subprocess.STDOUT, cwd=str(app))
                run.chainlets[truss.name] = chainlet
        wait_all_ready(run, timeout)
    except BaseException:
        run.stop()
        raise
    return run


def wait_all_ready(run: LocalChainRun, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(run.chainlets)
    while pending:
        for name, chainlet in list(pending.items()):
            if chainlet.proc is not None and chainlet.proc.poll() is not None:
                raise ChainStartError(f"chainlet `{name}` exited with status {chainlet.proc.returncode} "
                                      f"before it was ready; its log:\n{chainlet.logs()[-4000:]}")
            try:
                with urllib.request.urlopen(chainlet.url + READY_PATH, timeout=2) as response:
                    if response.status == 200:
                        del pending[name]
            except (urllib.error.URLError, OSError):
                pass
        if pending and time.monotonic() > deadline:
            names = ", ".join(sorted(pending))
            raise ChainStartError(f"chainlet(s) {names} not ready within {timeout:g} s; last log "
                                  f"lines:\n" + "\n".join(c.logs()[-2000:] for c in pending.values()))
        if pending:
            time.sleep(0.1)
