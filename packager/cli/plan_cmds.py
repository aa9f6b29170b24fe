"""Commands of the plan and render stages: lock, render."""

from __future__ import annotations

from pathlib import Path

import click

from .. import api
from ..plan.model import BuildOptions
from . import output

truss_dir_argument = click.argument("truss_dir", type=click.Path(path_type=Path), default=".")


def build_options(f):
    """Options shared by render/build: choices that stay out of config.yaml."""
    f = click.option("--base-image", help="Build FROM this image instead of the default/config one.")(f)
    f = click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Extra CA bundle trusted by pip/apt inside the build (TLS-intercepting proxies).")(f)
    f = click.option("--build-commands-after-code", is_flag=True,
                     help="Run build_commands after the code is copied (for commands that need it).")(f)
    f = click.option("--pip-index-url", envvar="PACK_PIP_INDEX_URL",
                     help="Package index pip uses inside the build (mirrors, corporate proxies).")(f)
    f = click.option("--locked", is_flag=True, help="Fail instead of resolving weights when pack.lock is missing or stale.")(f)
    return f


def options_from(base_image: str | None, ca_bundle: Path | None, build_commands_after_code: bool,
                 pip_index_url: str | None = None) -> BuildOptions:
    return BuildOptions(base_image=base_image, ca_bundle=str(ca_bundle) if ca_bundle else None,
                        build_commands_after_code=build_commands_after_code, pip_index_url=pip_index_url)


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
def lock_command(truss_dir: Path) -> None:
    """Resolve every model_cache source to pinned files and write TRUSS_DIR/pack.lock."""
    loaded, current = api.lock(truss_dir)
    output.problems(loaded.warnings)
    entries = current.manifest.entries
    seen = set()
    for e in entries:
        key = (e.source.kind, e.source.repo, e.revision.requested)
        if key in seen:
            continue
        seen.add(key)
        files = [x for x in entries if (x.source.kind, x.source.repo, x.revision.requested) == key]
        output.text(f"{e.source.kind}:{e.source.repo} {e.revision.requested or '(default)'} -> "
                    f"{e.revision.resolved}  ({len(files)} files, {sum(f.size for f in files)} bytes)")
    output.success(f"wrote {truss_dir / 'pack.lock'} ({len(entries)} files, {current.manifest.total_bytes} bytes)")


@click.command("render")
@truss_dir_argument
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), required=True,
              help="Directory to write the build context to (replaced atomically).")
@build_options
def render_command(truss_dir: Path, out: Path, base_image: str | None, ca_bundle: Path | None,
                   build_commands_after_code: bool, pip_index_url: str | None, locked: bool) -> None:
    """Write the Docker build context of TRUSS_DIR to OUTPUT and print its digest."""
    plan, rendered = api.render(truss_dir, out, options_from(base_image, ca_bundle, build_commands_after_code,
                                                             pip_index_url), locked=locked)
    for note in rendered.notes:
        output.note(note)
    output.text(f"context {rendered.path}\ndigest sha256:{rendered.digest}\n"
                f"files {rendered.files} ({rendered.bytes} bytes), weights {plan.weights_mode} "
                f"({len(plan.manifest.entries)} files, {plan.manifest.total_bytes} bytes)")
