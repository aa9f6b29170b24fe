"""Commands that use built images: push, run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import api
from ..errors import PackError
from . import json_results, output
from .build_cmds import build_summary, cache_options, read_password
from .build_progress import progress_view
from .container_cmds import output_line
from .plan_cmds import build_options, config_option, key_values, truss_dir_argument
from .signals import sigterm_as_interrupt
from .state import engine, promise_json


@click.command("push")
@truss_dir_argument
@build_options
@click.option("--image", "image_ref", required=True, help="REGISTRY/NAME[:TAG] to push to.")
@click.option("--username", help="Registry user (default: the docker config's credentials).")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from stdin.")
@click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto")
@cache_options(push=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result line (schema pack.push/v1; for CI).")
@config_option
def push_command(truss_dir: Path, options: api.BuildOptions, locked: bool, image_ref: str, username: str | None,
                 password_stdin: bool, progress: str, as_json: bool, cache: api.LayerCache,
                 config_file: Path | None = None) -> None:
    """Build TRUSS_DIR if needed and push the image (with its inline layer cache: the next build
    on a fresh runner takes it with --cache-from); print the pushed digest."""
    if as_json:
        promise_json(json_results.PUSH)
    password = read_password(username, password_stdin)
    started = time.monotonic()
    with progress_view("quiet" if as_json else progress) as view:
        result, pushed = api.push(truss_dir, options, image_ref=image_ref, username=username, password=password,
                                  locked=locked, progress=view, config=config_file, engine=engine(), cache=cache)
    if as_json:
        output.text(json_results.push_line(result, pushed, time.monotonic() - started))
        return
    build_summary(result)
    output.success(f"pushed {pushed.reference}")
    output.text(f"digest {pushed.digest}\npinned {pushed.pinned}")


def container_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of the commands that run a truss's container (`pack run`, `pack watch`): port,
    secrets, environment, names, readiness timeout, progress, --cpu."""
    options = [
        click.option("-p", "--port", default=8080, show_default=True,
                     help="Port the server listens on (host network)."),
        click.option("--secrets-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                     help="Directory of secret files (one per name), mounted read-only at /secrets."),
        click.option("--secret", "secret_names", multiple=True, metavar="NAME",
                     help="Mount secret NAME, read on this host from $PACK_SECRETS_DIR/NAME or TRUSS_SECRET_NAME "
                          "(HF tokens also from HF_TOKEN); repeatable."),
        click.option("-e", "--env", "env_items", multiple=True, metavar="KEY=VALUE", help="Extra environment."),
        click.option("--name", help="Container name (default: pack-<model>)."),
        click.option("--cache-volume", metavar="NAME", help="Docker volume of the weights cache (default: "
                                                            "pack-weights-<model>, kept between runs)."),
        click.option("--timeout", default=900.0, show_default=True, help="Seconds to wait for readiness."),
        click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto"),
        click.option("--cpu", is_flag=True, help="Run on CPU: request no GPU even when resources.accelerator asks "
                                                 "for one (engines without the NVIDIA runtime). The image stays "
                                                 "the same."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command("run")
@truss_dir_argument
@build_options
@config_option
@container_options
@click.option("--detach", is_flag=True, help="Leave the container running and return once it is ready "
                                             "(see `pack logs`, `pack stop`).")
def run_command(truss_dir: Path, options: api.BuildOptions, locked: bool, port: int, secrets_dir: Path | None,
                secret_names: tuple[str, ...], env_items: tuple[str, ...], name: str | None,
                cache_volume: str | None, timeout: float, detach: bool, progress: str, cpu: bool = False,
                config_file: Path | None = None) -> int | None:
    """Build TRUSS_DIR if needed and run it locally. In the foreground its output streams here and
    Ctrl-C (or SIGTERM) stops and removes the container; --detach returns once it is ready.
    Without --base-image it builds FROM the base image the last `pack build` of TRUSS_DIR was given."""
    env = key_values(env_items, "--env")
    secrets = api.host_secrets(secret_names)
    target = api.resolve(truss_dir, config=config_file)
    options, reused = api.run_options(target, options)
    if reused is not None:
        output.note(f"building FROM {reused}, the --base-image of the last build of {target.argument} "
                    "(pass --base-image to choose another)")
    with sigterm_as_interrupt():
        try:
            with progress_view(progress) as view:
                result = api.run(target, options, locked=locked, port=port, secrets_dir=secrets_dir,
                                 secrets=secrets, env=env, name=name, timeout=timeout, cpu=cpu,
                                 cache_volume=cache_volume, progress=view,
                                 on_output=None if detach else output_line, engine=engine())
        except KeyboardInterrupt:
            output.note("interrupted: nothing left running")
            return 130
        running = result.running
        try:
            # From here Ctrl-C and SIGTERM set `stop`, which the wait below answers by stopping
            # the container; the except covers one arriving before the handlers are in place.
            with api.stop_requested() as stop:
                if cpu and result.build.plan.accelerator is not None:
                    output.note(f"--cpu: no GPU requested although resources.accelerator is "
                                f"{result.build.plan.accelerator}")
                output.success(f"{result.build.tag} is ready at {running.url} after "
                               f"{running.ready_seconds:.1f}s (container {running.container.name})")
                if running.timeline:
                    output.text("startup " + json.dumps(running.timeline, sort_keys=True))
                output.text(f"try: pack predict --url {running.url} -d '{{...}}'")
                if detach:
                    return None
                code = api.attach(running, stop)
        except KeyboardInterrupt:
            if not detach:
                api.stop_running(running)
                output.note(f"stopped and removed {running.container.name}")
                return 130
            raise
    raise PackError(f"the container {running.container.name} exited with status {code}",
                    hint=f"its output is above; `pack logs {truss_dir}` shows it again")
