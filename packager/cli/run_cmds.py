"""Commands that use built images: push, run, predict."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import click

from .. import api, runner
from ..plan.model import BuildOptions
from ..errors import PackError
from . import output
from .build_progress import make_progress
from .plan_cmds import build_options, config_option, key_values, truss_dir_argument


def _built(truss_dir, options: BuildOptions, locked, progress, config_file=None):
    view = make_progress(progress)
    try:
        return api.build(truss_dir, options, locked=locked, progress=view, config=config_file)
    finally:
        if view is not None:
            view.close()


@click.command("push")
@truss_dir_argument
@build_options
@click.option("--image", "image_ref", required=True, help="REGISTRY/NAME[:TAG] to push to.")
@click.option("--username", help="Registry user (default: the docker config's credentials).")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from stdin.")
@click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result line.")
@config_option
def push_command(truss_dir: Path, options: BuildOptions, locked,
                 image_ref, username, password_stdin, progress, as_json, config_file=None) -> None:
    """Build TRUSS_DIR if needed and push the image; print the pushed digest."""
    from ..registry import push

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    if password_stdin and not username:
        raise PackError("--password-stdin needs --username", hint="pass --username USER")
    result = _built(truss_dir, options, locked, "quiet" if as_json else progress, config_file)
    pushed = push(result.image.id, image_ref, username=username, password=password)
    if as_json:
        output.text(json.dumps({"image": str(pushed.reference), "digest": pushed.digest,
                                "pinned": str(pushed.pinned), "image_id": result.image.id}))
        return
    output.success(f"pushed {pushed.reference}")
    output.text(f"digest {pushed.digest}\npinned {pushed.pinned}")


@click.command("run")
@truss_dir_argument
@build_options
@config_option
@click.option("-p", "--port", default=8080, show_default=True, help="Port the server listens on (host network).")
@click.option("--secrets-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Directory of secret files (one per name), mounted read-only at /secrets.")
@click.option("--secret", "secret_names", multiple=True, metavar="NAME",
              help="Mount secret NAME, read on this host from $PACK_SECRETS_DIR/NAME or TRUSS_SECRET_NAME "
                   "(HF tokens also from HF_TOKEN); repeatable.")
@click.option("-e", "--env", "env_items", multiple=True, metavar="KEY=VALUE", help="Extra environment.")
@click.option("--name", help="Container name (default: pack-<model>).")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds to wait for readiness.")
@click.option("--detach", is_flag=True, help="Leave the container running and return once it is ready.")
@click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto")
@click.option("--cpu", is_flag=True, help="Run on CPU: request no GPU even when resources.accelerator asks for "
                                          "one (engines without the NVIDIA runtime). The image stays the same.")
def run_command(truss_dir: Path, options: BuildOptions, locked, port,
                secrets_dir, secret_names, env_items, name, timeout, detach, progress, cpu=False,
                config_file=None) -> None:
    """Build TRUSS_DIR if needed, run it locally and wait until it is ready. Without --base-image
    it builds FROM the base image the last `pack build` of TRUSS_DIR was given."""
    env = key_values(env_items, "--env")
    named = _host_secrets(secret_names)
    target = api.resolve(truss_dir, config=config_file)
    if options.base_image is None:
        record = api.last_build(target)
        if record is not None and record.base_image:
            options = replace(options, base_image=record.base_image)
            output.note(f"building FROM {record.base_image}, the --base-image of the last build of "
                        f"{target.argument} (pass --base-image to choose another)")
    result = _built(target, options, locked, progress)
    container_name = name or f"pack-{runner.cache_volume_name(result.plan).removeprefix('pack-weights-')}"
    with runner.secrets_mount(secrets_dir, named) as mount:
        if cpu and result.plan.accelerator is not None:
            output.note(f"--cpu: no GPU requested although resources.accelerator is {result.plan.accelerator}")
        running = runner.start(result.image.id, result.plan, port=port, secrets_dir=mount, env=env,
                               name=container_name, timeout=timeout, cpu=cpu)
    output.success(f"{result.tag} is ready at {running.url} after {running.ready_seconds:.1f}s "
                   f"(container {running.container.name})")
    if running.timeline:
        output.text("startup " + json.dumps(running.timeline, sort_keys=True))
    output.text(f"try: pack predict --url {running.url} -d '{{...}}'")
    if detach:
        return
    try:
        while running.container.status() == "running":
            import time

            time.sleep(1.0)
    except KeyboardInterrupt:
        output.note("stopping")
        running.container.stop()
        return
    code = running.container.exit_code()
    raise PackError(f"the container exited with status {code}",
                    hint=f"its last lines:\n{running.container.logs(tail=20)}")


def _host_secrets(names: tuple[str, ...]) -> dict[str, str]:
    """Values for --secret NAME, read on this host and passed verbatim (the runtime strips only
    where a value is used as a credential, as Truss does with mounted secret files)."""
    from ..constants import HF_TOKEN, HUGGING_FACE_HUB_TOKEN, PACK_SECRETS_DIR, TRUSS_SECRET_PREFIX

    values = {}
    directory = os.environ.get(PACK_SECRETS_DIR)
    for secret in names:
        candidates = [os.environ.get(TRUSS_SECRET_PREFIX + secret)]
        if secret == "hf_access_token":
            candidates += [os.environ.get(HF_TOKEN), os.environ.get(HUGGING_FACE_HUB_TOKEN)]
        if directory and (Path(directory) / secret).is_file():
            candidates.insert(0, (Path(directory) / secret).read_text(encoding="utf-8"))
        value = next((c for c in candidates if c and c.strip() not in ("", "***")), None)
        if value is None:
            raise PackError(f"secret `{secret}` is not set on this host",
                            hint=f"put it in ${PACK_SECRETS_DIR}/{secret} or the env var {TRUSS_SECRET_PREFIX}{secret}")
        values[secret] = value
    return values


@click.command("predict")
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="Where the model runs.")
@click.option("-d", "--data", help="JSON input.")
@click.option("-f", "--file", "data_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the JSON input.")
@click.option("--model", default="model", show_default=True, help="Model name in the route.")
def predict_command(url: str, data: str | None, data_file: Path | None, model: str) -> None:
    """Send one prediction request to a running model and print the answer."""
    if (data is None) == (data_file is None):
        raise PackError("give the input with exactly one of -d JSON or -f FILE",
                        hint="""e.g. pack predict -d '{"text": "hello"}'""")
    raw = data if data is not None else data_file.read_text(encoding="utf-8")
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PackError(f"the input is not JSON: {exc}", hint="quote it for the shell: -d '{\"a\": 1}'") from None
    answer = runner.predict(url, payload, model=model)
    output.text(json.dumps(answer, indent=2) if not isinstance(answer, str) else answer)
