"""What every command of one `pack` invocation shares: the engine it talks to (the machine's
unless main() was given one), and the --json contract it promised (main() prints a failure in
it when the command fails)."""

from __future__ import annotations

from dataclasses import dataclass

import click

from .. import api


@dataclass
class CliState:
    engine: api.Engine | None = None
    json_schema: str | None = None  # set by a command run with --json


def _state() -> CliState | None:
    context = click.get_current_context(silent=True)
    return context.find_object(CliState) if context is not None else None


def engine() -> api.Engine | None:
    """The engine of the running command (None: the API opens the machine's)."""
    state = _state()
    return state.engine if state is not None else None


def promise_json(schema: str) -> None:
    """The running command answers in `schema` (json_results): a failure is a line of it too."""
    state = _state()
    if state is not None:
        state.json_schema = schema
