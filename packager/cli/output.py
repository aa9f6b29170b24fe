"""The only place that prints. Everything user-facing goes through one rich Console."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Iterable

from rich.console import Console
from rich.markup import escape

from ..errors import ConfigError, PackError, Problem

if TYPE_CHECKING:
    from ..api import ServerPackages, WeightLayerPlan

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def problems(items: Iterable[Problem], console: Console = err) -> None:
    for p in items:
        colour = "red" if p.severity == "error" else "yellow"
        field = f" [bold]{escape(p.path)}[/bold]:" if p.path else ""
        console.print(f"[dim]{escape(p.location())}:[/dim] [{colour}]{p.severity}[/{colour}]:{field} {escape(p.message)}")
        if p.hint:
            console.print(f"    [cyan]fix:[/cyan] {escape(p.hint)}")


def error(exc: PackError) -> None:
    """Print a user-facing error once, with its hint."""
    if isinstance(exc, ConfigError):
        problems(exc.warnings)
        problems(exc.problems)
        count = len(exc.problems)
        err.print(f"[red]{count} error{'s' if count != 1 else ''}[/red] in config")
        return
    err.print(f"[red]error:[/red] {escape(exc.message)}")
    if exc.hint:
        err.print(f"    [cyan]fix:[/cyan] {escape(exc.hint)}")


def bug(exc: BaseException) -> None:
    err.print(f"[red]internal error in pack:[/red] {escape(type(exc).__name__)}: {escape(str(exc))}")
    err.print("    this is a bug in pack, not in your truss; set PACK_DEBUG=1 to see the traceback")


def success(message: str) -> None:
    out.print(f"[green]✓[/green] {escape(message)}")


def note(message: str) -> None:
    err.print(f"[dim]{escape(message)}[/dim]")


def text(data: str) -> None:
    sys.stdout.write(data if data.endswith("\n") else data + "\n")


def as_json(data: Any) -> None:
    text(json.dumps(data, indent=2))


def weight_layers(layers: WeightLayerPlan) -> None:
    """The baked weights' layer plan: one line per layer (stage name, files, bytes)."""
    if not layers.layers:
        return
    links = " and 1 links layer" if layers.image_layers > len(layers.layers) else ""
    text(f"weight layers {len(layers.layers)} (at most {layers.max_layers}){links}")
    for row in layers.summary():
        text(f"  {row['name']}  {row['files']} file{'s' if row['files'] != 1 else ''}  {row['bytes']} bytes")


def server_packages(added: ServerPackages) -> None:
    """Truss's server packages the image gets because the code imports them (information)."""
    if added.packages:
        text(f"adds {len(added.packages)} of Truss's server packages: the code imports them, the "
             f"requirements leave them out, and every Truss {added.truss_version} image has them")
    for package in added.packages:
        sites = ", ".join(f"{s.where()} `{s.module}`" for s in package.imports[:3])
        more = f" and {len(package.imports) - 3} more" if len(package.imports) > 3 else ""
        guarded = " (every import guarded by `except ImportError`)" if package.optional else ""
        text(f"  {package.requirement}  <- {sites}{more}{guarded}")
    if added.packages:
        text("  to choose the version yourself, list the package in `requirements` in config.yaml")
    for item in added.unscanned:
        note(f"not scanned for imports: {item}")
