"""Commands that make and use images: build (and, as they land, push, run, predict)."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import api
from ..errors import PackError
from . import json_results, output
from .build_progress import progress_view
from .plan_cmds import build_options, config_option, key_values, truss_dir_argument
from .state import engine, promise_json


def cache_options(*, push: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--cache-from/--cache-to and the switch that leaves the inline cache out; the command gets
    them as one `cache` (an api.LayerCache)."""
    off_flag, off_help = (("--no-push-cache", "Push the image without its inline layer cache metadata.") if push
                          else ("--no-inline-cache", "Write no layer cache metadata into the image."))

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)  # with the options already attached below this decorator
        def wrapped(*args: Any, cache_from: tuple[str, ...], cache_to: str | None, no_inline: bool,
                    **kwargs: Any) -> Any:
            cache = api.LayerCache(sources=tuple(cache_from), inline=not no_inline, export_ref=cache_to)
            return command(*args, cache=cache, **kwargs)

        options = [
            click.option("--cache-from", "cache_from", multiple=True, metavar="REF",
                         help="Import layer cache from REF: an image an earlier build pushed (a fresh CI runner "
                              "reuses its unchanged layers, baked weights included); repeatable. A REF the "
                              "registry does not have yet is skipped."),
            click.option("--cache-to", "cache_to", metavar="REF",
                         help="Also export every stage's cache to REF in a registry (buildx builders only; "
                              "Docker 20.10's BuildKit writes the inline cache)."),
            click.option(off_flag, "no_inline", is_flag=True, help=off_help),
        ]
        for option in reversed(options):
            wrapped = option(wrapped)
        return wrapped

    return decorate


@click.command("build")
@truss_dir_argument
@build_options
@click.option("-t", "--tag", help="Image tag (default: <model_name>:<context digest>).")
@click.option("--no-cache", is_flag=True, help="Build every layer again (weights included).")
@click.option("--build-arg", multiple=True, metavar="KEY=VALUE", help="Extra build argument.")
@click.option("--platform", help="Target platform, e.g. linux/amd64.")
@click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto",
              show_default=True, help="Live view in a terminal, plain lines in CI.")
@cache_options(push=False)
@click.option("--username", help="Registry user for the --cache-from/--cache-to registries (default: the docker "
                                 "config's credentials).")
@click.option("--password-stdin", is_flag=True, help="Read that registry password from stdin.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result line (schema pack.build/v1; for CI).")
@config_option
def build_command(truss_dir: Path, options: api.BuildOptions, locked: bool, tag: str | None, no_cache: bool,
                  build_arg: tuple[str, ...], platform: str | None, progress: str, as_json: bool,
                  cache: api.LayerCache, username: str | None, password_stdin: bool,
                  config_file: Path | None = None) -> None:
    """Render TRUSS_DIR and build its image; print the image id, tag and size."""
    if as_json:
        promise_json(json_results.BUILD)
    password = read_password(username, password_stdin)
    started = time.monotonic()
    build_args = key_values(build_arg, "--build-arg")
    with progress_view("quiet" if as_json and progress == "auto" else progress) as view:
        result = api.build(truss_dir, options, locked=locked, tag=tag, no_cache=no_cache, build_args=build_args,
                           platform=platform, progress=view, config=config_file, engine=engine(), cache=cache,
                           username=username, password=password)
    seconds = time.monotonic() - started
    if as_json:
        output.text(json_results.build_line(result, seconds))
        return
    build_summary(result)
    output.success(f"built {result.tag} in {seconds:.1f}s")
    image = result.image
    output.text(f"image {image.id}\ntag {result.tag}\nsize {image.size / 1e6:.1f} MB, {image.layers} layers\n"
                f"steps {len(image.built_steps)} built, {len(image.cached_steps)} cached")


def read_password(username: str | None, password_stdin: bool) -> str | None:
    """--password-stdin's password (one line; never an argument, so never in a process list)."""
    if password_stdin and not username:
        raise PackError("--password-stdin needs --username", hint="pass --username USER")
    return sys.stdin.readline().rstrip("\r\n") if password_stdin else None


def build_summary(result: api.BuildResult) -> None:
    """What a build did beyond its image, for humans: notes, weights fetched, the layer cache."""
    for warning in json_results.build_warnings(result):
        output.note(warning)
    output.weight_layers(result.plan.weight_layers)
    if result.plan.weight_layers.layers:
        output.note(f"weights: {result.weight_steps_run} of {len(result.plan.weight_layers.layers)} download steps "
                    f"ran, {api.human_bytes(result.weight_bytes_fetched)} fetched")
    output.note(result.image.cache.describe())
