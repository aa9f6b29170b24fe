"""Commands of the config stage: check, config, schema, init."""

from __future__ import annotations

from pathlib import Path

import click

from .. import api
from ..errors import ConfigError
from . import json_results, output
from .plan_cmds import config_option
from .state import promise_json

_truss_dir = click.argument("truss_dir", type=click.Path(path_type=Path), default=".")
_allow_unknown = click.option(
    "--allow-unknown-keys", is_flag=True,
    help="Report unknown keys as warnings (configs written for newer Truss versions).",
)


@click.command("check")
@_truss_dir
@_allow_unknown
@click.option("--json", "as_json", is_flag=True, help="Print the findings as one JSON line (schema pack.check/v1).")
@config_option
def check_command(truss_dir: Path, allow_unknown_keys: bool, as_json: bool, config_file: Path | None = None) -> None:
    """Validate TRUSS_DIR/config.yaml (or a ModelBase .py file); exit 1 if it has errors."""
    if as_json:
        promise_json(json_results.CHECK)
    try:
        target = api.resolve(truss_dir, config=config_file)
        loaded = api.check(target, allow_unknown_keys=allow_unknown_keys)
    except ConfigError as exc:
        if as_json:
            output.text(json_results.check_line(False, errors=[p.as_dict() for p in exc.problems],
                                                warnings=[p.as_dict() for p in exc.warnings]))
            raise click.exceptions.Exit(exc.exit_code) from None
        raise
    platform = loaded.config.platform_features()
    added = api.truss_server_packages(loaded)
    if as_json:
        output.text(json_results.check_line(True, errors=[], warnings=[w.as_dict() for w in loaded.warnings],
                                            platform_only=platform, truss_server_packages=added.as_dict()))
        return
    output.problems(loaded.warnings)
    output.server_packages(added)
    if platform:
        output.note("platform-only sections (validated; pack cannot build them locally): "
                    + ", ".join(platform))
    suffix = f" ({len(loaded.warnings)} warning{'s' if len(loaded.warnings) != 1 else ''})" if loaded.warnings else ""
    if target.model is not None:
        output.success(f"{target.model.source} is valid{suffix}: ModelBase `{target.model.class_name}` "
                       f"-> truss {target.truss_dir}")
    else:
        output.success(f"{loaded.file} is valid{suffix}")


@click.command("config")
@_truss_dir
@_allow_unknown
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
@config_option
def config_command(truss_dir: Path, allow_unknown_keys: bool, as_json: bool, config_file: Path | None = None) -> None:
    """Print the resolved config of TRUSS_DIR with every default filled in."""
    loaded, resolved = api.config_document(truss_dir, allow_unknown_keys=allow_unknown_keys, config=config_file)
    output.problems(loaded.warnings)
    if as_json:
        output.as_json(resolved)
    else:
        import yaml

        output.text(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))


@click.command("schema")
def schema_command() -> None:
    """Print the JSON schema of config.yaml (for editor completion and validation)."""
    output.as_json(api.schema())


@click.command("init")
@click.argument("truss_dir", type=click.Path(path_type=Path))
@click.option("--name", "model_name", help="model_name to write (default: the directory name).")
def init_command(truss_dir: Path, model_name: str | None) -> None:
    """Create a new truss in TRUSS_DIR that passes `pack check`."""
    loaded = api.init(truss_dir, model_name)
    output.success(f"created {truss_dir} (model_name: {loaded.config.model_name}); "
                   f"edit {truss_dir / 'model' / 'model.py'}, then `pack check {truss_dir}`")
