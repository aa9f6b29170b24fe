"""Entry point of the `pack` command: the group, and the one place errors are turned into exits."""

from __future__ import annotations

import os
import sys

import click

from .. import __version__, api
from ..errors import PackError
from . import json_results, output
from .build_cmds import build_command
from .chains_cmds import chains_group
from .config_cmds import check_command, config_command, init_command, schema_command
from .container_cmds import cleanup_command, logs_command, stop_command
from .deploy_cmds import chains_deploy_group, deploy_group
from .fetch_cmd import fetch_command
from .plan_cmds import lock_command, render_command
from .predict_cmd import predict_command
from .run_cmds import push_command, run_command
from .state import CliState
from .watch_cmds import watch_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pack")
def cli() -> None:
    """Build fast-starting container images from Truss model directories."""


# In pipeline order, so `pack --help` reads like the data flow.
for command in (init_command, check_command, config_command, schema_command, lock_command, render_command,
                build_command, push_command, deploy_group, run_command, watch_command, logs_command, stop_command,
                cleanup_command, predict_command, fetch_command, chains_group):
    cli.add_command(command)
chains_group.add_command(chains_deploy_group)  # `pack chains deploy render`


def main(argv: list[str] | None = None, *, engine: api.Engine | None = None) -> int:
    """`pack ARGV...`; returns the exit code. engine: the engine every command uses (default:
    the machine's; tests pass a FakeEngine)."""
    state = CliState(engine)
    try:
        # Without standalone mode click returns a command's exit code instead of exiting.
        returned = cli.main(args=argv, prog_name="pack", standalone_mode=False, obj=state)
    except PackError as exc:
        if state.json_schema:  # a CI script reads stdout: the failure in the contract it asked for
            output.text(json_results.error_line(state.json_schema, exc))
        output.error(exc)
        return exc.exit_code
    except click.exceptions.Abort:
        output.line(["aborted"])
        return json_results.EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return json_results.EXIT_INTERRUPTED
    except Exception as exc:  # a bug in pack: say so, once, without a traceback
        if os.environ.get("PACK_DEBUG"):
            raise
        if state.json_schema:
            output.text(json_results.internal_error_line(state.json_schema, exc))
        output.bug(exc)
        return json_results.EXIT_INTERNAL
    return returned if isinstance(returned, int) else 0


if __name__ == "__main__":
    sys.exit(main())
