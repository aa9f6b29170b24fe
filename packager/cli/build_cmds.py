"""Commands that make and use images: build (and, as they land, push, run, predict)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from .. import api
from . import output
from .build_progress import progress_view
from .plan_cmds import build_options, config_option, key_values, truss_dir_argument
from .state import engine


@click.command("build")
@truss_dir_argument
@build_options
@click.option("-t", "--tag", help="Image tag (default: <model_name>:<context digest>).")
@click.option("--no-cache", is_flag=True, help="Build every layer again (weights included).")
@click.option("--build-arg", multiple=True, metavar="KEY=VALUE", help="Extra build argument.")
@click.option("--platform", help="Target platform, e.g. linux/amd64.")
@click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto",
              show_default=True, help="Live view in a terminal, plain lines in CI.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result line (for CI).")
@config_option
def build_command(truss_dir: Path, options: api.BuildOptions, locked: bool, tag: str | None, no_cache: bool,
                  build_arg: tuple[str, ...], platform: str | None, progress: str, as_json: bool,
                  config_file: Path | None = None) -> None:
    """Render TRUSS_DIR and build its image; print the image id, tag and size."""
    started = time.monotonic()
    build_args = key_values(build_arg, "--build-arg")
    with progress_view("quiet" if as_json and progress == "auto" else progress) as view:
        result = api.build(truss_dir, options, locked=locked, tag=tag, no_cache=no_cache, build_args=build_args,
                           platform=platform, progress=view, config=config_file, engine=engine())
    seconds = time.monotonic() - started
    image = result.image
    if as_json:
        output.text(json.dumps({
            "image_id": image.id, "tag": result.tag, "size": image.size, "seconds": round(seconds, 2),
            "context_digest": f"sha256:{result.context.digest}", "weights_mode": result.plan.weights_mode,
            "built_steps": len(image.built_steps), "cached_steps": len(image.cached_steps),
            "builder": image.builder, "retried": image.retried,
            "weight_layers": result.plan.weight_layers.summary(),
        }))
        return
    for note in result.context.notes:
        output.note(note)
    if image.retried:
        output.note(f"the engine failed transiently ({image.retried}); built again, finished steps from its cache")
    output.weight_layers(result.plan.weight_layers)
    output.success(f"built {result.tag} in {seconds:.1f}s")
    output.text(f"image {image.id}\ntag {result.tag}\nsize {image.size / 1e6:.1f} MB\n"
                f"steps {len(image.built_steps)} built, {len(image.cached_steps)} cached")
