"""The verbs of a chain: render (one truss per chainlet), build, push, run (containers, or local
processes of pack's runtime). `pack chains ...` is one call here per step."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from .. import runner
from ..builder import BuildResult
from ..chains_codegen import ChainletTruss, GeneratedChain, render_chain
from ..chains_codegen.local_run import ChainStartError, LocalChainRun, dynamic_config, start_local
from ..interrupts import signals_held
from ..constants import PACK_CHAINS_DYNAMIC_CONFIG
from ..engine import ContainerHandle, ContainerRunner, Engine, ProgressCallback, RunRequest, open_engine
from ..errors import PackError
from ..plan.model import BuildOptions
from ..registry import push as push_image
from .truss import build

# Per chainlet build: a context around it that yields the build's progress callback (or None).
ChainletProgress = Callable[[ChainletTruss], AbstractContextManager[ProgressCallback | None]]


@contextmanager
def _chain_errors() -> Iterator[None]:
    """Mistakes in the chain file are user errors (exit 1 with the message), not pack bugs."""
    from chains.errors import ChainsDeploymentError, ChainsRuntimeError, ChainsUsageError, MissingDependencyError

    try:
        yield
    except (ChainsUsageError, MissingDependencyError) as exc:
        raise PackError(str(exc), hint="fix the chain file at the lines named above") from None
    except (ChainsDeploymentError, ChainsRuntimeError) as exc:
        raise PackError(str(exc)) from None
    except (ValueError, ImportError, FileNotFoundError, SyntaxError) as exc:
        raise PackError(f"cannot load the chain: {type(exc).__name__}: {exc}",
                        hint="pass a chain .py file (and its entrypoint class, as ENTRYPOINT or "
                             "--entrypoint, if it marks none)") from None


def chains_render(source: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
                  entrypoint: str | None = None, name: str | None = None) -> GeneratedChain:
    """One truss per chainlet reachable from the entrypoint, under `out` (default: a new
    temporary directory)."""
    target = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="pack-chain-"))
    with _chain_errors():
        return render_chain(source, target, entrypoint=entrypoint, name=name)


def chains_build(chain: GeneratedChain, options: BuildOptions | None = None, *, locked: bool = False,
                 progress: ChainletProgress | None = None, engine: Engine | None = None) -> list[BuildResult]:
    """Build every chainlet's truss, dependencies first."""
    engine = engine or open_engine()
    results = []
    for chainlet in chain.chainlets:
        with (progress(chainlet) if progress is not None else nullcontext(None)) as callback:
            results.append(build(chainlet.path, options, locked=locked, progress=callback, engine=engine))
    return results


@dataclass(frozen=True)
class ChainletPush:
    chainlet: ChainletTruss
    image: str  # the pushed reference
    digest: str
    pinned: str  # registry/name@digest


def chains_push(chain: GeneratedChain, results: list[BuildResult], registry: str, *, tag: str | None = None,
                username: str | None = None, password: str | None = None,
                engine: Engine | None = None) -> list[ChainletPush]:
    """Push every chainlet image to REGISTRY[/NAMESPACE]/<model name>:<tag or its digest>."""
    engine = engine or open_engine()
    pushed = []
    for chainlet, result in zip(chain.chainlets, results, strict=True):
        ref = chainlet_image(registry, chainlet, tag or result.tag.rpartition(':')[2])
        done = push_image(result.image.id, ref, engine=engine, username=username, password=password)
        pushed.append(ChainletPush(chainlet, str(done.reference), done.digest, str(done.pinned)))
    return pushed


def chainlet_image(registry: str, chainlet: ChainletTruss, tag: str) -> str:
    """Where a chainlet's image is pushed (and deployed from): REGISTRY[/NAMESPACE]/<model name>:TAG."""
    return f"{registry.rstrip('/')}/{chainlet.model_name.lower()}:{tag}"


def chain_ports(chain: GeneratedChain, base_port: int) -> dict[str, int]:
    """base_port, base_port+1, ... on 127.0.0.1: dependencies first, the entrypoint last."""
    return {c.name: base_port + i for i, c in enumerate(chain.chainlets)}


def dependency_urls(chain: GeneratedChain, items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """CHAINLET=URL items (class or display name) -> {display name: URL}: the other chainlets'
    calls to CHAINLET go to URL (a gateway or proxy in front of it)."""
    by_name = {}
    for c in chain.chainlets:
        by_name[c.name] = by_name[c.display_name] = c.display_name
    overrides = {}
    for item in items:
        key, sep, url = item.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise PackError(f"--dependency-url {item!r} is not CHAINLET=http(s)://...",
                            hint="e.g. --dependency-url TextEmbedder=http://127.0.0.1:9000")
        if key not in by_name:
            raise PackError(f"--dependency-url {item!r}: {key!r} is no chainlet of this chain",
                            hint=f"use one of {', '.join(c.name for c in chain.chainlets)}")
        overrides[by_name[key]] = url
    return overrides


def _shut_down(containers: Sequence[ContainerHandle]) -> None:
    """Stop and remove every container at once (each gets SIGTERM, then SIGKILL after its grace
    period); the one way a chain of containers ends: Ctrl-C, SIGTERM, a failed start, a chainlet
    that died."""
    if not containers:
        return
    with signals_held(), ThreadPoolExecutor(len(containers)) as pool:
        failures = [f.exception() for f in [pool.submit(runner.shut_down, c) for c in containers]]
    for failure in failures:
        if failure is not None:
            raise failure


class _Recording:
    """Starts containers on an engine and remembers each, so that a chain interrupted or failing
    while a chainlet starts (before runner.start returned it) shuts that one down too."""

    def __init__(self, engine: ContainerRunner) -> None:
        self._engine = engine
        self.containers: list[ContainerHandle] = []

    def run(self, request: RunRequest) -> ContainerHandle:
        with signals_held():
            container = self._engine.run(request)
            self.containers.append(container)
        return container


@dataclass(frozen=True)
class ChainRun:
    chainlets: tuple[tuple[ChainletTruss, runner.Running], ...]

    @property
    def entrypoint_url(self) -> str:
        truss, running = self.chainlets[-1]
        return truss.endpoint_url(running.url)

    def stop(self) -> None:
        """Stop and remove every chainlet's container."""
        _shut_down([running.container for _, running in self.chainlets])


def chains_run(chain: GeneratedChain, results: list[BuildResult], *, base_port: int = 8080,
               secrets_dir: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
               url_overrides: Mapping[str, str] | None = None, timeout: float = 900.0, cpu: bool = False,
               engine: Engine | None = None) -> ChainRun:
    """Start every chainlet's container on the host network, dependencies first, each told
    where the others answer; wait until all are ready. A chainlet that fails to start, or an
    interrupt (KeyboardInterrupt) on the way, shuts down every container started so far."""
    recording = _Recording(engine or open_engine())
    ports = chain_ports(chain, base_port)
    config = {**dynamic_config(chain, ports), **{d: {"predict_url": u} for d, u in (url_overrides or {}).items()}}
    environment = {**(env or {}), PACK_CHAINS_DYNAMIC_CONFIG: json.dumps(config)}
    started: list[tuple[ChainletTruss, runner.Running]] = []
    try:
        for chainlet, result in zip(chain.chainlets, results, strict=True):
            started.append((chainlet, runner.start(
                result.image.id, result.plan, port=ports[chainlet.name], secrets_dir=secrets_dir,
                env=environment, name=f"pack-chain-{chainlet.model_name.lower()}", timeout=timeout,
                engine=recording, cpu=cpu)))
    except BaseException:
        _shut_down(recording.containers)
        raise
    return ChainRun(tuple(started))


def chains_run_local(chain: GeneratedChain, *, base_port: int = 8080, secrets_dir: str | os.PathLike[str] | None = None,
                     env: Mapping[str, str] | None = None, url_overrides: Mapping[str, str] | None = None,
                     timeout: float = 900.0) -> LocalChainRun:
    """The chainlets as local processes of pack's runtime (no containers, no weights prefetch)."""
    try:
        return start_local(chain, ports=chain_ports(chain, base_port),
                           secrets_dir=Path(secrets_dir) if secrets_dir else None, env=dict(env or {}),
                           timeout=timeout, url_overrides=dict(url_overrides) if url_overrides else None)
    except ChainStartError as exc:
        raise PackError(str(exc)) from None
