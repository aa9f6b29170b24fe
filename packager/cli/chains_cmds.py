"""`pack chains render|build|push|run`: a chain file -> one truss, image and container per
chainlet (see chains/ and packager/chains_codegen/)."""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import click

from .. import api, runner
from ..errors import PackError
from ..plan.model import BuildOptions
from . import output
from .build_progress import make_progress
from .plan_cmds import build_options, key_values

DYNAMIC_CONFIG_ENV = "PACK_CHAINS_DYNAMIC_CONFIG"


@contextmanager
def _chain_errors() -> Iterator[None]:
    """Mistakes in the chain file are user errors (exit 1 with the message), not pack bugs."""
    from chains.errors import (
        ChainsDeploymentError,
        ChainsRuntimeError,
        ChainsUsageError,
        MissingDependencyError,
    )

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


def _render(source: Path, out: Optional[Path], entrypoint: Optional[str], name: Optional[str]):
    from ..chains_codegen import render_chain

    target = out or Path(tempfile.mkdtemp(prefix="pack-chain-"))
    with _chain_errors():
        return render_chain(source, target, entrypoint=entrypoint, name=name)


def _one_entrypoint(positional: Optional[str], flag: Optional[str]) -> Optional[str]:
    if positional and flag and positional != flag:
        raise click.UsageError(f"the entrypoint is given twice: ENTRYPOINT `{positional}` and "
                               f"--entrypoint `{flag}`; give it once")
    return positional or flag


def chain_options(callback):
    """SOURCE [ENTRYPOINT] (as `truss chains push SOURCE ENTRYPOINT`), --entrypoint, --name; the
    command receives one `entrypoint`."""
    @functools.wraps(callback)
    def command(*args: Any, entrypoint_arg: Optional[str] = None, **kwargs: Any) -> Any:
        kwargs["entrypoint"] = _one_entrypoint(entrypoint_arg, kwargs.get("entrypoint"))
        return callback(*args, **kwargs)

    # Click lists the parameters in reverse order of decoration: SOURCE first, then ENTRYPOINT.
    f = click.argument("entrypoint_arg", metavar="[ENTRYPOINT]", required=False)(command)
    f = click.option("--name", help="Chain name (default: mark_entrypoint's name, else the "
                                    "entrypoint's display name).")(f)
    f = click.option("--entrypoint", metavar="CLASS", help="Entrypoint chainlet class (default: the one "
                                                           "marked with @mark_entrypoint); also "
                                                           "accepted as the argument ENTRYPOINT.")(f)
    f = click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))(f)
    return f


@click.group("chains")
def chains_group() -> None:
    """Chains: a Python file of chainlets -> one truss, image and container per chainlet."""


@chains_group.command("render")
@chain_options
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write <chain>/chainlet_<Class>/ trusses into.")
@click.option("--json", "as_json", is_flag=True, help="Print the chain manifest as JSON.")
def render_command(source: Path, entrypoint: Optional[str], name: Optional[str], out: Path,
                   as_json: bool) -> None:
    """Generate one truss directory per chainlet reachable from the entrypoint."""
    chain = _render(source, out, entrypoint, name)
    if as_json:
        output.text((chain.root / "chain.json").read_text(encoding="utf-8").strip())
        return
    output.success(f"chain `{chain.chain_name}`: {len(chain.chainlets)} chainlet truss(es) in {chain.root}")
    for c in chain.chainlets:
        deps = f" -> {', '.join(c.dependencies)}" if c.dependencies else ""
        output.text(f"  {c.path.name:<32} {c.model_name}{deps}")
        output.text(f"    code: {', '.join(c.included_files)}" + ("; weights on a volume" if c.volume_mode else ""))
    output.text(f"check one: pack check {chain.chainlets[-1].path}")


def _build_all(chain, options: BuildOptions, locked, progress) -> list[Any]:
    results = []
    for c in chain.chainlets:
        output.note(f"building chainlet {c.name} ({c.path})")
        view = make_progress(progress)
        try:
            results.append(api.build(c.path, options,
                                     locked=locked, progress=view))
        finally:
            if view is not None:
                view.close()
    return results


@chains_group.command("build")
@chain_options
@build_options
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
              help="Where the generated trusses go (default: a temporary directory).")
@click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result line.")
def build_command(source: Path, entrypoint, name, options: BuildOptions,
                  locked, out, progress, as_json) -> None:
    """Render the chain and build every chainlet's image with pack's build pipeline."""
    chain = _render(source, out, entrypoint, name)
    started = time.monotonic()
    results = _build_all(chain, options, locked, "quiet" if as_json else progress)
    rows = [{"chainlet": c.name, "display_name": c.display_name, "tag": r.tag, "image_id": r.image.id,
             "size": r.image.size} for c, r in zip(chain.chainlets, results)]
    if as_json:
        output.text(json.dumps({"chain": chain.chain_name, "chainlets": rows}))
        return
    output.success(f"built {len(rows)} chainlet image(s) in {time.monotonic() - started:.1f}s")
    for row in rows:
        output.text(f"  {row['chainlet']:<24} {row['tag']:<48} {row['image_id'][:19]}")


@chains_group.command("push")
@chain_options
@build_options
@click.option("--registry", required=True, help="REGISTRY[/NAMESPACE] to push every chainlet image to.")
@click.option("--tag", "tag", help="Tag of the pushed images (default: each image's context digest).")
@click.option("--username", help="Registry user (default: the docker config's credentials).")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from stdin.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result line.")
def push_command(source: Path, entrypoint, name, options: BuildOptions, locked,
                 registry, tag, username, password_stdin, out, progress, as_json) -> None:
    """Build every chainlet image and push them all; print a table of what was pushed."""
    import sys

    from ..registry import push

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    if password_stdin and not username:
        raise PackError("--password-stdin needs --username", hint="pass --username USER")
    chain = _render(source, out, entrypoint, name)
    results = _build_all(chain, options, locked, "quiet" if as_json else progress)
    rows = []
    for c, r in zip(chain.chainlets, results):
        image_tag = tag or r.tag.rpartition(":")[2]
        ref = f"{registry.rstrip('/')}/{c.model_name.lower()}:{image_tag}"
        pushed = push(r.image.id, ref, username=username, password=password)
        rows.append({"chainlet": c.name, "display_name": c.display_name, "image": str(pushed.reference),
                     "digest": pushed.digest, "pinned": str(pushed.pinned)})
    if as_json:
        output.text(json.dumps({"chain": chain.chain_name, "chainlets": rows}))
        return
    output.success(f"pushed {len(rows)} chainlet image(s) of chain `{chain.chain_name}`")
    output.text(f"  {'CHAINLET':<24} {'IMAGE':<56} DIGEST")
    for row in rows:
        output.text(f"  {row['chainlet']:<24} {row['image']:<56} {row['digest']}")


@chains_group.command("run")
@chain_options
@build_options
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--base-port", type=int, default=8080, show_default=True,
              help="Ports base-port, base-port+1, ... on 127.0.0.1, dependencies first, entrypoint last.")
@click.option("--secrets-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Directory of secret files (one per name), mounted at /secrets in every chainlet.")
@click.option("-e", "--env", "env_items", multiple=True, metavar="KEY=VALUE",
              help="Extra environment for every chainlet.")
@click.option("--dependency-url", "dependency_urls", multiple=True, metavar="CHAINLET=URL",
              help="Send the other chainlets' calls to CHAINLET (class or display name) to URL, "
                   "e.g. a gateway or proxy in front of it; CHAINLET itself still starts.")
@click.option("--no-docker", is_flag=True, help="Run the chainlets as local processes of pack's "
                                                "runtime instead of containers (no weights prefetch).")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds to wait for readiness.")
@click.option("--detach", is_flag=True, help="Return once every chainlet is ready (containers keep running).")
@click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto")
@click.option("--cpu", is_flag=True, help="Run every chainlet on CPU: request no GPU even for chainlets whose "
                                          "Compute asks for one (engines without the NVIDIA runtime).")
def run_command(source: Path, entrypoint, name, options: BuildOptions, locked,
                out, base_port, secrets_dir, env_items, dependency_urls, no_docker, timeout, detach,
                progress, cpu=False) -> None:
    """Start the whole chain locally (host network), wire each dependency's URL, wait for all
    chainlets to be ready and print the entrypoint URL."""
    env = key_values(env_items, "--env")
    chain = _render(source, out, entrypoint, name)
    overrides = _url_overrides(chain, dependency_urls)
    ports = {c.name: base_port + i for i, c in enumerate(chain.chainlets)}
    if no_docker:
        _run_processes(chain, ports, secrets_dir, env, timeout, detach, overrides)
        return
    from ..chains_codegen.local_run import dynamic_config

    results = _build_all(chain, options, locked, progress)
    config = dynamic_config(chain, ports)
    for display, url in overrides.items():
        config[display] = {"predict_url": url}
        output.note(f"calls to chainlet {display} go to {url}")
    env[DYNAMIC_CONFIG_ENV] = json.dumps(config)
    started: list[Any] = []
    try:
        for c, r in zip(chain.chainlets, results):
            output.note(f"starting chainlet {c.name} on 127.0.0.1:{ports[c.name]}")
            if cpu and r.plan.accelerator is not None:
                output.note(f"--cpu: chainlet {c.name} gets no GPU although it asks for {r.plan.accelerator}")
            started.append(runner.start(r.image.id, r.plan, port=ports[c.name], secrets_dir=secrets_dir,
                                        env=env, name=f"pack-chain-{c.model_name.lower()}", timeout=timeout,
                                        cpu=cpu))
    except BaseException:
        for running in started:
            running.container.stop()
        raise
    entry_url = f"{started[-1].url}/v1/models/model:predict"
    output.success(f"chain `{chain.chain_name}`: {len(started)} chainlet(s) ready")
    for c, running in zip(chain.chainlets, started):
        output.text(f"  {c.name:<24} {running.url:<28} container {running.container.name}")
    output.text(f"entrypoint {entry_url}")
    if detach:
        return
    try:
        while all(r.container.status() == "running" for r in started):
            time.sleep(1.0)
    except KeyboardInterrupt:
        output.note("stopping the chain")
        for running in started:
            running.container.stop()
        return
    stopped = [(c, r) for c, r in zip(chain.chainlets, started) if r.container.status() != "running"]
    for running in started:
        running.container.stop()
    c, r = stopped[0]
    raise PackError(f"chainlet {c.name} exited with status {r.container.exit_code()}",
                    hint=f"its last lines:\n{r.container.logs(tail=20)}")


def _url_overrides(chain: Any, items: tuple[str, ...]) -> dict[str, str]:
    """--dependency-url CHAINLET=URL items -> {display name: URL}."""
    by_name = {}
    for c in chain.chainlets:
        by_name[c.name] = by_name[c.display_name] = c.display_name
    overrides = {}
    for item in items:
        key, sep, url = item.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise click.BadParameter(f"{item!r} is not CHAINLET=http(s)://...", param_hint="--dependency-url")
        if key not in by_name:
            raise click.BadParameter(f"{key!r} is no chainlet of this chain (chainlets: "
                                     f"{', '.join(c.name for c in chain.chainlets)})",
                                     param_hint="--dependency-url")
        overrides[by_name[key]] = url
    return overrides


def _run_processes(chain, ports, secrets_dir, env, timeout, detach, overrides=None) -> None:
    from ..chains_codegen.local_run import ChainStartError, start_local

    try:
        run = start_local(chain, ports=ports, secrets_dir=secrets_dir, env=env, timeout=timeout,
                          url_overrides=overrides or None)
    except ChainStartError as exc:
        raise PackError(str(exc)) from None
    output.success(f"chain `{chain.chain_name}`: {len(run.chainlets)} chainlet process(es) ready")
    for c in chain.chainlets:
        local = run.chainlets[c.name]
        output.text(f"  {c.name:<24} {local.url:<28} log {local.log_path}")
    output.text(f"entrypoint {run.entrypoint_url}")
    if detach:
        output.note("processes keep running: " + " ".join(str(c.proc.pid) for c in run.chainlets.values()
                                                          if c.proc is not None))
        return
    try:
        while all(c.proc is not None and c.proc.poll() is None for c in run.chainlets.values()):
            time.sleep(0.5)
    except KeyboardInterrupt:
        output.note("stopping the chain")
        run.stop()
        return
    dead = next(c for c in run.chainlets.values() if c.proc is not None and c.proc.poll() is not None)
    run.stop()
    raise PackError(f"chainlet {dead.truss.name} exited with status {dead.proc.returncode}",
                    hint=f"its log: {dead.log_path}")


__all__ = ["chains_group"]
