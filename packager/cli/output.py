"""The only place that prints.

Lines are styled pieces, (text, style) or plain text. In a terminal they go through rich; elsewhere
(CI logs, pipes) as plain text, so a command that only prints a line or two never imports rich,
which costs a tenth of a second at every start.
"""

from __future__ import annotations

import codecs
import functools
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import ConfigError, PackError, Problem

if TYPE_CHECKING:
    from rich.console import Console

    from ..api import ServerPackages, WeightLayerPlan

Piece = str | tuple[str, str]  # text, or (text, rich style)


@functools.cache
def console(stderr: bool = True) -> Console:
    """The rich Console of stderr (or stdout), for live views and progress bars."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def is_terminal(stream: TextIO) -> bool:
    return stream.isatty() or bool(os.environ.get("FORCE_COLOR"))


def in_ci() -> bool:
    """CI=true (GitHub Actions, GitLab CI and most runners set it)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def live_view_allowed(stream: TextIO) -> bool:
    """Live views (cursor movement, redrawn bars) only for a person at a terminal: never in CI,
    even where the runner gives the job a pseudo-terminal, and never into a pipe or a file."""
    return is_terminal(stream) and not in_ci()


def line(pieces: Sequence[Piece], *, stderr: bool = True) -> None:
    """One line of styled pieces: through rich in a terminal, as plain text elsewhere."""
    stream = sys.stderr if stderr else sys.stdout
    if not is_terminal(stream):
        stream.write("".join(p if isinstance(p, str) else p[0] for p in pieces) + "\n")
        stream.flush()
        return
    from rich.text import Text

    console(stderr).print(Text.assemble(*pieces))


def problems(items: Iterable[Problem]) -> None:
    for p in items:
        colour = "red" if p.severity == "error" else "yellow"
        field: list[Piece] = [" ", (p.path, "bold"), ":"] if p.path else []
        line([(f"{p.location()}:", "dim"), " ", (p.severity, colour), ":", *field, f" {p.message}"])
        if p.hint:
            line(["    ", ("fix:", "cyan"), f" {p.hint}"])


def error(exc: PackError) -> None:
    """Print a user-facing error once, with its hint."""
    if isinstance(exc, ConfigError):
        problems(exc.warnings)
        problems(exc.problems)
        count = len(exc.problems)
        line([(f"{count} error{'s' if count != 1 else ''}", "red"), " in config"])
        return
    line([("error:", "red"), f" {exc.message}"])
    if exc.hint:
        line(["    ", ("fix:", "cyan"), f" {exc.hint}"])


def bug(exc: BaseException) -> None:
    line([("internal error in pack:", "red"), f" {type(exc).__name__}: {exc}"])
    line(["    this is a bug in pack, not in your truss; set PACK_DEBUG=1 to see the traceback"])


def success(message: str) -> None:
    line([("✓", "green"), f" {message}"], stderr=False)


def note(message: str) -> None:
    line([(message, "dim")])


def text(data: str) -> None:
    sys.stdout.write(data if data.endswith("\n") else data + "\n")


def stream(chunks: Iterable[bytes]) -> None:
    """Bytes to stdout as they come, each chunk flushed at once (a model's streamed answer); a
    terminal gets a final newline when the bytes did not end with one."""
    out = sys.stdout
    out.flush()
    binary = getattr(out, "buffer", None)  # None: a text-only stream (a StringIO in tests)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    last = b"\n"
    for chunk in chunks:
        if binary is not None:
            binary.write(chunk)
            binary.flush()
        else:
            out.write(decoder.decode(chunk))
            out.flush()
        last = chunk[-1:] or last
    if last != b"\n" and out.isatty():
        out.write("\n")
        out.flush()


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
