"""`pack watch` and `pack chains watch`: dev images run, then kept in step with every edit."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from .. import runner
from ..builder import BuildResult, build_image
from ..chains_codegen import ChainletTruss, GeneratedChain
from ..chains_codegen.local_run import dynamic_config
from ..constants import PACK_CHAINS_DYNAMIC_CONFIG
from ..devloop import FileWatcher, Reporter, WatchEvent, WatchSession, follow, start_watching
from ..devloop.chain import ChainletEvent, ChainReporter, ChainWatch
from ..devloop.watcher import is_ignored, rewatch_session
from ..engine import Engine, ProgressCallback, open_engine
from ..plan.model import BuildOptions, BuildPlan
from ..plan.sources import Credentials
from .chains import chain_ports
from .target import Target, resolve_target
from .truss import TrussArg, _plan_loaded


@dataclass(frozen=True)
class _Dev:
    """How every watched truss of one command is planned, built and run."""

    options: BuildOptions
    locked: bool
    credentials: Credentials | None
    progress: ProgressCallback | None
    engine: Engine
    secrets_dir: Path | None
    env: dict[str, str]
    cpu: bool
    timeout: float

    def session(self, target: Target, report: Reporter, *, port: int, name: str | None,
                cache_volume: str | None = None, env: Mapping[str, str] | None = None) -> WatchSession:
        def replan() -> BuildPlan:
            return _plan_loaded(target.load(), self.options, locked=self.locked, credentials=self.credentials,
                                engine=self.engine)

        def build(plan: BuildPlan) -> BuildResult:
            return build_image(plan, progress=self.progress, credentials=self.credentials, engine=self.engine)

        return WatchSession(replan, build, self.engine, report, port=port, env={**self.env, **(env or {})},
                            secrets_dir=self.secrets_dir, name=name, cache_volume=cache_volume, cpu=self.cpu,
                            timeout=self.timeout)


def watch(truss_dir: TrussArg, options: BuildOptions | None = None, *, report: Reporter, locked: bool = False,
          port: int = 8080, secrets_dir: str | os.PathLike[str] | None = None,
          secrets: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None,
          name: str | None = None, cache_volume: str | None = None, cpu: bool = False,
          timeout: float = 900.0, progress: ProgressCallback | None = None,
          credentials: Credentials | None = None, config: str | os.PathLike[str] | None = None,
          engine: Engine | None = None, stop: threading.Event | None = None) -> None:
    """Run the truss and apply every edit to it until `stop` is set or the caller is interrupted
    (KeyboardInterrupt: Ctrl-C, or SIGTERM where the caller turns it into one); the container is
    stopped and removed on the way out. Events (builds, reloads, failures, the container's
    output) go to `report`."""
    target = resolve_target(truss_dir, config)
    with runner.secrets_mount(secrets_dir, dict(secrets or {})) as mount:
        dev = _Dev(replace(options or BuildOptions(), dev=True), locked, credentials, progress,
                   engine or open_engine(), mount, dict(env or {}), cpu, timeout)
        session = dev.session(target, report, port=port, name=name, cache_volume=cache_volume)
        plan = session.replan()
        watcher = start_watching(plan)  # before the build: an edit made meanwhile is applied after
        try:
            session.start(plan)
            follow(session.apply, watcher, stop or threading.Event(), rewatch_session(session))
        finally:
            watcher.stop()
            session.close()


def chains_watch(source: str | os.PathLike[str], options: BuildOptions | None = None, *, report: ChainReporter,
                 entrypoint: str | None = None, name: str | None = None, out: str | os.PathLike[str] | None = None,
                 locked: bool = False, base_port: int = 8080, secrets_dir: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None, cpu: bool = False, timeout: float = 900.0,
                 progress: ProgressCallback | None = None, credentials: Credentials | None = None,
                 engine: Engine | None = None, stop: threading.Event | None = None) -> None:
    """Run every chainlet of the chain in a dev container (dependencies first, wired to each
    other as `pack chains run` does) and apply each edit of the chain's code to the chainlets
    it changes, until `stop` or an interrupt; then stop and remove them all. Events come as
    ChainletEvent (one chainlet's) or plain events (the chain's)."""
    source_path = Path(source).resolve()
    workspace = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="pack-chain-watch-"))
    dev = _Dev(replace(options or BuildOptions(), dev=True), locked, credentials, progress, engine or open_engine(),
               Path(secrets_dir) if secrets_dir else None, dict(env or {}), cpu, timeout)

    def make_session(chain: GeneratedChain, chainlet: ChainletTruss) -> WatchSession:
        ports = chain_ports(chain, base_port)
        wiring = {PACK_CHAINS_DYNAMIC_CONFIG: json.dumps(dynamic_config(chain, ports))}
        return dev.session(resolve_target(chainlet.path), partial(_tagged, report, chainlet.name),
                           port=ports[chainlet.name], name=f"pack-chain-{chainlet.model_name.lower()}", env=wiring)

    chain_watch = ChainWatch(source_path, entrypoint, name, workspace, make_session, report)
    # The chain's own directory: the chain file and the modules it imports.
    watcher = FileWatcher((source_path.parent,), partial(_chain_ignored, workspace)).start()
    try:
        chain_watch.start()
        follow(chain_watch.apply, watcher, stop or threading.Event())
    finally:
        watcher.stop()
        chain_watch.close()


def _tagged(report: ChainReporter, chainlet: str, event: WatchEvent) -> None:
    report(ChainletEvent(chainlet, event))


def _chain_ignored(workspace: Path, path: Path) -> bool:
    return path.is_relative_to(workspace.resolve()) or is_ignored(path)
