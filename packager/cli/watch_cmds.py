"""`pack watch`: the dev loop's command line, a printer of the session's events."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import click

from .. import api
from . import output
from .build_progress import progress_view
from .container_cmds import output_line
from .plan_cmds import build_options, config_option, key_values, truss_dir_argument
from .run_cmds import container_options
from .signals import sigterm_as_interrupt
from .state import engine


def json_event(event: Any) -> dict[str, Any]:
    """One event as a JSON object: {"event": kind, ...its fields} (a chainlet's with "chainlet")."""
    if isinstance(event, api.ChainletEvent):
        return {"chainlet": event.chainlet, **json_event(event.event)}
    doc: dict[str, Any] = {"event": type(event).__name__.lower()}
    if isinstance(event, api.NotApplied):
        doc.update(message=event.error.message, hint=event.error.hint)
    elif is_dataclass(event) and not isinstance(event, type):
        doc.update(asdict(event))
    return doc


def print_event(event: Any) -> None:
    """One event of `pack watch` or `pack chains watch` for a person (a chainlet's with its name)."""
    if isinstance(event, api.ChainletEvent):
        inner = event.event
        if isinstance(inner, api.LogLine):
            output_line(f"[{event.chainlet}] {inner.text}")
        else:
            output.note(f"[{event.chainlet}]")
            print_event(inner)
        return
    if isinstance(event, api.LogLine):
        output_line(event.text)
    elif isinstance(event, api.Building):
        output.note("building the dev image" if event.reason is None else event.reason)
    elif isinstance(event, api.Serving):
        output.success(f"serving at {event.url} after {event.ready_seconds:.1f}s (container {event.container}); "
                       "watching for edits, Ctrl-C to stop")
    elif isinstance(event, api.Reloaded):
        output.success(f"{', '.join(event.changed)}: reloaded in {event.since_edit:.2f}s "
                       f"(generation {event.generation})")
    elif isinstance(event, api.ReloadFailed):
        where = f"{event.where}: " if event.where else ""
        output.line([("error:", "red"), f" {where}{event.error.type}: {event.error.message}"])
        serving = (f"the previous model keeps serving (generation {event.generation})" if event.generation
                   else "no model is serving yet")
        output.note(f"    {serving}; fix the file and save to reload")
    elif isinstance(event, api.NotApplied):
        output.error(event.error)
        output.note("    the running container keeps serving; fix it and save again")


def event_printer(as_json: bool) -> Callable[[Any], None]:
    def report(event: Any) -> None:
        if as_json:
            output.text(json.dumps(json_event(event), default=str))
            sys.stdout.flush()
        else:
            print_event(event)

    return report


@click.command("watch")
@truss_dir_argument
@build_options
@config_option
@container_options
@click.option("--json", "as_json", is_flag=True, help="Print each event as one JSON line on stdout.")
def watch_command(truss_dir: Path, options: api.BuildOptions, locked: bool, port: int, secrets_dir: Path | None,
                  secret_names: tuple[str, ...], env_items: tuple[str, ...], name: str | None,
                  cache_volume: str | None, timeout: float, progress: str, cpu: bool, as_json: bool,
                  config_file: Path | None = None) -> int | None:
    """Run TRUSS_DIR and keep it in step with your edits: code, data and live config changes are
    patched into the running container and the model reloads in place (the weights stay);
    requirements, system packages, environment, weights or base image changes rebuild and
    restart. Ctrl-C or SIGTERM stops and removes the container."""
    env = key_values(env_items, "--env")
    secrets = api.host_secrets(secret_names)
    target = api.resolve(truss_dir, config=config_file)
    options, reused = api.run_options(target, options)
    if reused is not None:
        output.note(f"building FROM {reused}, the --base-image of the last build of {target.argument}")

    report = event_printer(as_json)
    with progress_view("quiet" if as_json else progress) as view, sigterm_as_interrupt():
        try:
            api.watch(target, options, report=report, locked=locked, port=port, secrets_dir=secrets_dir,
                      secrets=secrets, env=env, name=name, cache_volume=cache_volume, cpu=cpu,
                      timeout=timeout, progress=view, engine=engine())
        except KeyboardInterrupt:
            output.note("stopped; the container is removed")
            return 130
    return None
