"""Commands of the config stage: check, config, schema, init."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from ..config import load_config
from ..config.json_schema import config_json_schema
from ..errors import ConfigError
from ..scaffold import init_truss
from . import output

_truss_dir = click.argument("truss_dir", type=click.Path(path_type=Path), default=".")
_allow_unknown = click.option(
    "--allow-unknown-keys", is_flag=True,
    help="Report unknown keys as warnings (configs written for newer Truss versions).",
)


@click.command("check")
@_truss_dir
@_allow_unknown
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def check_command(truss_dir: Path, allow_unknown_keys: bool, as_json: bool) -> None:
    """Validate TRUSS_DIR/config.yaml; exit 1 if it has errors."""
    try:
        loaded = load_config(truss_dir, allow_unknown_keys=allow_unknown_keys)
    except ConfigError as exc:
        if as_json:
            output.as_json({"valid": False, "errors": [p.as_dict() for p in exc.problems],
                            "warnings": [p.as_dict() for p in exc.warnings]})
            raise click.exceptions.Exit(exc.exit_code) from None
        raise
    platform = loaded.config.platform_features()
    if as_json:
        output.as_json({"valid": True, "errors": [], "warnings": [w.as_dict() for w in loaded.warnings],
                        "platform_only": platform})
        return
    output.problems(loaded.warnings)
    if platform:
        output.note("platform-only sections (validated; pack cannot build them locally): "
                    + ", ".join(platform))
    suffix = f" ({len(loaded.warnings)} warning{'s' if len(loaded.warnings) != 1 else ''})" if loaded.warnings else ""
    output.success(f"{loaded.file} is valid{suffix}")


@click.command("config")
@_truss_dir
@_allow_unknown
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
def config_command(truss_dir: Path, allow_unknown_keys: bool, as_json: bool) -> None:
    """Print the resolved config of TRUSS_DIR with every default filled in."""
    loaded = load_config(truss_dir, allow_unknown_keys=allow_unknown_keys)
    output.problems(loaded.warnings)
    resolved = loaded.resolved()
    if as_json:
        output.as_json(resolved)
    else:
        output.text(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))


@click.command("schema")
def schema_command() -> None:
    """Print the JSON schema of config.yaml (for editor completion and validation)."""
    output.as_json(config_json_schema())


@click.command("init")
@click.argument("truss_dir", type=click.Path(path_type=Path))
@click.option("--name", "model_name", help="model_name to write (default: the directory name).")
def init_command(truss_dir: Path, model_name: str | None) -> None:
    """Create a new truss in TRUSS_DIR that passes `pack check`."""
    init_truss(truss_dir, model_name)
    loaded = load_config(truss_dir)
    output.success(f"created {truss_dir} (model_name: {loaded.config.model_name}); "
                   f"edit {truss_dir / 'model' / 'model.py'}, then `pack check {truss_dir}`")
