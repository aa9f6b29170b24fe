"""What every command of one `pack` invocation shares: the engine it talks to (the machine's
unless main() was given one)."""

from __future__ import annotations

from dataclasses import dataclass

import click

from .. import api


@dataclass(frozen=True)
class CliState:
    engine: api.Engine | None = None


def engine() -> api.Engine | None:
    """The engine of the running command (None: the API opens the machine's)."""
    context = click.get_current_context(silent=True)
    state = context.find_object(CliState) if context is not None else None
    return state.engine if state is not None else None
