"""`pack chains render|build|push|run`: a chain file -> one truss, image and container per
chainlet (see chains/ and packager/chains_codegen/)."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from .. import api
from ..errors import PackError
from . import output
from .build_cmds import read_password
from .build_progress import progress_view
from .plan_cmds import build_options, key_values
from .signals import sigterm_as_interrupt
from .state import engine
from .watch_cmds import event_printer


def _one_entrypoint(positional: str | None, flag: str | None) -> str | None:
    if positional and flag and positional != flag:
        raise click.UsageError(f"the entrypoint is given twice: ENTRYPOINT `{positional}` and "
                               f"--entrypoint `{flag}`; give it once")
    return positional or flag


def chain_options(callback: Callable[..., Any]) -> Callable[..., Any]:
    """SOURCE [ENTRYPOINT] (as `truss chains push SOURCE ENTRYPOINT`), --entrypoint, --name; the
    command receives one `entrypoint`."""
    @functools.wraps(callback)
    def command(*args: Any, entrypoint_arg: str | None = None, **kwargs: Any) -> Any:
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


def chainlet_run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Where a chain's chainlets run (`pack chains run`, `pack chains watch`): ports, secrets,
    environment."""
    options = [
        click.option("--base-port", type=int, default=8080, show_default=True,
                     help="Ports base-port, base-port+1, ... on 127.0.0.1, dependencies first, entrypoint last."),
        click.option("--secrets-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                     help="Directory of secret files (one per name), mounted at /secrets in every chainlet."),
        click.option("-e", "--env", "env_items", multiple=True, metavar="KEY=VALUE",
                     help="Extra environment for every chainlet."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group("chains")
def chains_group() -> None:
    """Chains: a Python file of chainlets -> one truss, image and container per chainlet."""


@chains_group.command("render")
@chain_options
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write <chain>/chainlet_<Class>/ trusses into.")
@click.option("--json", "as_json", is_flag=True, help="Print the chain manifest as JSON.")
def render_command(source: Path, entrypoint: str | None, name: str | None, out: Path, as_json: bool) -> None:
    """Generate one truss directory per chainlet reachable from the entrypoint."""
    chain = api.chains_render(source, out, entrypoint=entrypoint, name=name)
    if as_json:
        output.text((chain.root / "chain.json").read_text(encoding="utf-8").strip())
        return
    output.success(f"chain `{chain.chain_name}`: {len(chain.chainlets)} chainlet truss(es) in {chain.root}")
    for c in chain.chainlets:
        deps = f" -> {', '.join(c.dependencies)}" if c.dependencies else ""
        output.text(f"  {c.path.name:<32} {c.model_name}{deps}")
        output.text(f"    code: {', '.join(c.included_files)}" + ("; weights on a volume" if c.volume_mode else ""))
    output.text(f"check one: pack check {chain.chainlets[-1].path}")


def _views(mode: str) -> api.ChainletProgress:
    """Each chainlet's build gets a line saying which it is and a progress view of its own."""
    @contextmanager
    def view(chainlet: Any) -> Iterator[Any]:
        output.note(f"building chainlet {chainlet.name} ({chainlet.path})")
        with progress_view(mode) as callback:
            yield callback
    return view


@chains_group.command("build")
@chain_options
@build_options
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
              help="Where the generated trusses go (default: a temporary directory).")
@click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result line.")
def build_command(source: Path, entrypoint: str | None, name: str | None, options: api.BuildOptions,
                  locked: bool, out: Path | None, progress: str, as_json: bool) -> None:
    """Render the chain and build every chainlet's image with pack's build pipeline."""
    chain = api.chains_render(source, out, entrypoint=entrypoint, name=name)
    started = time.monotonic()
    results = api.chains_build(chain, options, locked=locked, progress=_views("quiet" if as_json else progress),
                               engine=engine())
    rows: list[dict[str, Any]] = [
        {"chainlet": c.name, "display_name": c.display_name, "tag": r.tag, "image_id": r.image.id,
         "size": r.image.size} for c, r in zip(chain.chainlets, results, strict=True)]
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
def push_command(source: Path, entrypoint: str | None, name: str | None, options: api.BuildOptions, locked: bool,
                 registry: str, tag: str | None, username: str | None, password_stdin: bool, out: Path | None,
                 progress: str, as_json: bool) -> None:
    """Build every chainlet image and push them all; print a table of what was pushed."""
    password = read_password(username, password_stdin)
    chain = api.chains_render(source, out, entrypoint=entrypoint, name=name)
    results = api.chains_build(chain, options, locked=locked, progress=_views("quiet" if as_json else progress),
                               engine=engine())
    pushed = api.chains_push(chain, results, registry, tag=tag, username=username, password=password,
                             engine=engine())
    rows = [{"chainlet": p.chainlet.name, "display_name": p.chainlet.display_name, "image": p.image,
             "digest": p.digest, "pinned": p.pinned} for p in pushed]
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
@chainlet_run_options
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
def run_command(source: Path, entrypoint: str | None, name: str | None, options: api.BuildOptions, locked: bool,
                out: Path | None, base_port: int, secrets_dir: Path | None, env_items: tuple[str, ...],
                dependency_urls: tuple[str, ...], no_docker: bool, timeout: float, detach: bool, progress: str,
                cpu: bool = False) -> None:
    """Start the whole chain locally (host network), wire each dependency's URL, wait for all
    chainlets to be ready and print the entrypoint URL. In the foreground, Ctrl-C or SIGTERM
    stops every chainlet (also while they are still starting)."""
    env = key_values(env_items, "--env")
    with sigterm_as_interrupt():
        chain = api.chains_render(source, out, entrypoint=entrypoint, name=name)
        overrides = api.dependency_urls(chain, dependency_urls)
        if no_docker:
            local = api.chains_run_local(chain, base_port=base_port, secrets_dir=secrets_dir, env=env,
                                         url_overrides=overrides, timeout=timeout)
            _print_processes(local, chain, detach)
            if not detach:
                _serve(local, lambda: _dead_process(local))
            return
        results = api.chains_build(chain, options, locked=locked, progress=_views(progress), engine=engine())
        for display, url in overrides.items():
            output.note(f"calls to chainlet {display} go to {url}")
        ports = api.chain_ports(chain, base_port)
        for c, r in zip(chain.chainlets, results, strict=True):
            output.note(f"starting chainlet {c.name} on 127.0.0.1:{ports[c.name]}")
            if cpu and r.plan.accelerator is not None:
                output.note(f"--cpu: chainlet {c.name} gets no GPU although it asks for {r.plan.accelerator}")
        run = api.chains_run(chain, results, base_port=base_port, secrets_dir=secrets_dir, env=env,
                             url_overrides=overrides, timeout=timeout, cpu=cpu, engine=engine())
        output.success(f"chain `{chain.chain_name}`: {len(run.chainlets)} chainlet(s) ready")
        for c, running in run.chainlets:
            output.text(f"  {c.name:<24} {running.url:<28} container {running.container.name}")
        output.text(f"entrypoint {run.entrypoint_url}")
        if not detach:
            _serve(run, lambda: _dead_container(run))


@chains_group.command("watch")
@chain_options
@build_options
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the chainlets' trusses while watched (default: a temporary one).")
@chainlet_run_options
@click.option("--timeout", default=900.0, show_default=True, help="Seconds to wait for readiness.")
@click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto")
@click.option("--cpu", is_flag=True, help="Request no GPU even for chainlets whose Compute asks for one.")
@click.option("--json", "as_json", is_flag=True, help="Print each event as one JSON line on stdout.")
def watch_command(source: Path, entrypoint: str | None, name: str | None, options: api.BuildOptions, locked: bool,
                  out: Path | None, base_port: int, secrets_dir: Path | None, env_items: tuple[str, ...],
                  timeout: float, progress: str, cpu: bool, as_json: bool) -> int | None:
    """Run the chain (a dev container per chainlet) and keep it in step with your edits of its
    code: a chainlet whose code changed reloads in place, the others keep running; a chain whose
    chainlets changed restarts. Ctrl-C or SIGTERM stops and removes every chainlet."""
    env = key_values(env_items, "--env")
    with progress_view("quiet" if as_json else progress) as view, sigterm_as_interrupt():
        try:
            api.chains_watch(source, options, report=event_printer(as_json), entrypoint=entrypoint, name=name,
                             out=out, locked=locked, base_port=base_port, secrets_dir=secrets_dir, env=env,
                             cpu=cpu, timeout=timeout, progress=view, engine=engine())
        except KeyboardInterrupt:
            output.note("stopped; every chainlet's container is removed")
            return 130
    return None


def _serve(run: Any, dead: Callable[[], PackError | None]) -> None:
    """Wait in the foreground until Ctrl-C or SIGTERM (both arrive as KeyboardInterrupt) or a
    chainlet's end; either way every chainlet is stopped, by run.stop()."""
    try:
        while (failure := dead()) is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        output.note("stopping the chain")
        run.stop()
        return
    run.stop()
    raise failure


def _dead_container(run: Any) -> PackError | None:
    for chainlet, running in run.chainlets:
        if running.container.status() != "running":
            return PackError(f"chainlet {chainlet.name} exited with status {running.container.exit_code()}",
                             hint=f"its last lines:\n{running.container.logs(tail=20)}")
    return None


def _dead_process(run: Any) -> PackError | None:
    for local in run.chainlets.values():
        if local.proc is not None and local.proc.poll() is not None:
            return PackError(f"chainlet {local.truss.name} exited with status {local.proc.returncode}",
                             hint=f"its log: {local.log_path}")
    return None


def _print_processes(run: Any, chain: Any, detach: bool) -> None:
    output.success(f"chain `{chain.chain_name}`: {len(run.chainlets)} chainlet process(es) ready")
    for c in chain.chainlets:
        local = run.chainlets[c.name]
        output.text(f"  {c.name:<24} {local.url:<28} pid {local.proc.pid:<8} log {local.log_path}")
    output.text(f"entrypoint {run.entrypoint_url}")
    if detach:
        output.note("processes keep running: " + " ".join(str(pid) for pid in run.pids))


__all__ = ["chains_group"]
