"""Commands of the plan and render stages: lock, render."""

from __future__ import annotations

import functools
from collections.abc import Callable
from collections import Counter
from pathlib import Path
from typing import Any

import click

from .. import api
from . import output

truss_dir_argument = click.argument("truss_dir", type=click.Path(path_type=Path), default=".")
# As `truss push DIR --config FILE`: FILE replaces DIR/config.yaml; model/, data/ and packages/
# stay relative to TRUSS_DIR. TRUSS_DIR may also be a ModelBase .py file (its truss is generated).
config_option = click.option(
    "--config", "config_file", type=click.Path(path_type=Path), default=None, metavar="FILE",
    help="Use FILE instead of TRUSS_DIR/config.yaml (paths in it stay relative to TRUSS_DIR).")


_OPTION_NAMES = ("base_image", "ca_bundle", "build_commands_after_code", "pip_index_url",
                 "max_weight_layers", "bake_weights")


def build_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by the commands that render or build: choices that stay out of config.yaml.
    The command receives them as one `options: BuildOptions` (and `locked`)."""

    @functools.wraps(command)
    def collect(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _OPTION_NAMES}
        kwargs["options"] = options_from(**values)
        return command(*args, **kwargs)

    f = click.option("--base-image", help="Build FROM this image instead of the default/config one.")(collect)
    f = click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Extra CA bundle trusted by pip/apt inside the build (TLS-intercepting proxies).")(f)
    f = click.option("--build-commands-after-code", is_flag=True,
                     help="Run build_commands after the code is copied (for commands that need it).")(f)
    f = click.option("--pip-index-url", envvar="PACK_PIP_INDEX_URL",
                     help="Package index pip uses inside the build (mirrors, corporate proxies).")(f)
    f = click.option("--max-weight-layers", type=click.IntRange(min=1), default=api.DEFAULT_MAX_LAYERS,
                     show_default=True,
                     help="At most this many image layers for baked weights, whatever the file count "
                          "(lowered automatically to keep the image under 100 layers).")(f)
    f = click.option("--bake-weights", is_flag=True,
                     help="Bake `weights:` sources into the image (default: fetched when the container "
                          "starts, as the platform mounts them).")(f)
    f = click.option("--locked", is_flag=True,
                     help="Fail instead of resolving weights when pack.lock is missing or stale.")(f)
    return f


def options_from(base_image: str | None = None, ca_bundle: Path | None = None,
                 build_commands_after_code: bool = False, pip_index_url: str | None = None,
                 max_weight_layers: int = api.DEFAULT_MAX_LAYERS, bake_weights: bool = False) -> api.BuildOptions:
    return api.BuildOptions(base_image=base_image, ca_bundle=str(ca_bundle) if ca_bundle else None,
                        build_commands_after_code=build_commands_after_code, pip_index_url=pip_index_url,
                        max_weight_layers=max_weight_layers, bake_weights=bake_weights)


def key_values(items: tuple[str, ...], option: str) -> dict[str, str]:
    """KEY=VALUE options (--env, --build-arg) as a mapping; a malformed item is a usage error."""
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        values[key] = value
    return values


@click.command("lock")
@truss_dir_argument
@config_option
def lock_command(truss_dir: Path, config_file: Path | None = None) -> None:
    """Resolve every model_cache source to pinned files and write TRUSS_DIR/pack.lock (with
    --config other.yaml: other.pack.lock beside it)."""
    loaded, current = api.lock(truss_dir, config=config_file)
    output.problems(loaded.warnings)
    entries = current.manifest.entries
    seen = set()
    for e in entries:
        key = (e.source.kind, e.source.repo, e.revision.requested)
        if key in seen:
            continue
        seen.add(key)
        files = [x for x in entries if (x.source.kind, x.source.repo, x.revision.requested) == key]
        # Unchanged files keep the commit they were first pinned at (plan.lock.keep_pinned_commits).
        commits = Counter(x.revision.resolved for x in files)
        pinned = ", ".join(f"{sha} ({n} files)" for sha, n in commits.most_common()) if len(commits) > 1 \
            else e.revision.resolved
        output.text(f"{e.source.kind}:{e.source.repo} {e.revision.requested or '(default)'} -> "
                    f"{pinned}  ({len(files)} files, {sum(f.size for f in files)} bytes)")
    output.success(f"wrote {api.lock_file(loaded)} ({len(entries)} files, {current.manifest.total_bytes} bytes)")


@click.command("render")
@truss_dir_argument
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), required=True,
              help="Directory to write the build context to (replaced atomically).")
@build_options
@config_option
def render_command(truss_dir: Path, out: Path, options: api.BuildOptions, locked: bool,
                   config_file: Path | None = None) -> None:
    """Write the Docker build context of TRUSS_DIR to OUTPUT and print its digest."""
    plan, rendered = api.render(truss_dir, out, options, locked=locked, config=config_file)
    for note in rendered.notes:
        output.note(note)
    output.text(f"context {rendered.path}\ndigest sha256:{rendered.digest}\n"
                f"files {rendered.files} ({rendered.bytes} bytes), weights {plan.weights_mode} "
                f"({len(plan.manifest.entries)} files, {plan.manifest.total_bytes} bytes)")
    output.weight_layers(plan.weight_layers)
