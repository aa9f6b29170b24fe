"""Commands for what pack left running or stored for a truss: logs, stop, cleanup."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click

from .. import api
from . import output
from .plan_cmds import config_option, truss_dir_argument
from .signals import sigterm_as_interrupt
from .state import engine


def output_line(line: str) -> None:
    """One line of a container's output, on stdout at once (as `docker run` and `docker logs`),
    the server's JSON log records shown as plain lines."""
    output.stream([(api.readable_log_line(line) + "\n").encode()])


@click.command("logs")
@truss_dir_argument
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until the container stops.")
@click.option("-n", "--tail", type=click.IntRange(min=0), default=None, metavar="N",
              help="Only the last N lines (default: all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line: container and text.")
@config_option
def logs_command(truss_dir: Path, follow: bool, tail: int | None, as_json: bool,
                 config_file: Path | None = None) -> int | None:
    """Print the output of TRUSS_DIR's container (the running one, else the newest)."""
    found = api.logs(truss_dir, follow=follow, tail=tail, config=config_file, engine=engine())
    name = found.container.name
    lines = ((json.dumps({"container": name, "line": line}) if as_json else api.readable_log_line(line))
             for line in found.lines)
    try:
        with sigterm_as_interrupt():
            output.stream((line + "\n").encode() for line in lines)
    except KeyboardInterrupt:
        return 130 if follow else None  # Ctrl-C ends a follow; the container keeps running
    return None


@click.command("stop")
@truss_dir_argument
@click.option("-t", "--timeout", "timeout_s", type=click.IntRange(min=0), default=10, show_default=True,
              help="Seconds the server gets to finish (SIGTERM) before it is killed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result line.")
@config_option
def stop_command(truss_dir: Path, timeout_s: int, as_json: bool, config_file: Path | None = None) -> None:
    """Stop and remove TRUSS_DIR's containers (its weight cache volume stays for the next run)."""
    stopped = api.stop(truss_dir, timeout_s=timeout_s, config=config_file, engine=engine())
    if as_json:
        output.text(json.dumps({"stopped": [{"name": c.name, "id": c.id, "state": c.state} for c in stopped]}))
        return
    if not stopped:
        output.note(f"no container of {truss_dir} to stop")
    for container in stopped:
        output.success(f"stopped and removed {container.name}")


@click.command("cleanup")
@truss_dir_argument
@click.option("--keep", type=click.IntRange(min=0), default=None, metavar="N",
              help="Keep the N newest images of the truss (default: the newest one).")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--build-cache", is_flag=True, help="Also remove pack's BuildKit cache mounts (pip, apt, weight "
                                                  "downloads), which every truss's builds share.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result.")
@config_option
def cleanup_command(truss_dir: Path, keep: int | None, dry_run: bool, build_cache: bool, as_json: bool,
                    config_file: Path | None = None) -> int | None:
    """Remove what pack left for TRUSS_DIR: its containers, its pack-weights-* volumes, its images
    but the newest (--keep); with --build-cache also pack's BuildKit cache mounts."""
    kept = {"keep": keep} if keep is not None else {}  # the API's default otherwise
    report = api.cleanup(truss_dir, dry_run=dry_run, build_cache=build_cache, config=config_file, engine=engine(),
                         **kept)
    if as_json:
        output.text(json.dumps(report.as_dict()))
        return 1 if report.failed else None
    verb = "would remove" if dry_run else "removed"
    for item in report.items:
        size = f", {api.human_bytes(item.size)}" if item.size else ""
        detail = f" ({item.detail}{size})" if item.detail or size else ""
        output.text(f"{verb} {item.kind} {item.name}{detail}")
    for item in report.kept:
        output.text(f"kept image {item.name}")
    for item, why in report.failed:
        output.line([("failed:", "red"), f" {item.kind} {item.name}: {why}"])
    counts = Counter(item.kind for item in report.items)
    # No byte total: images share layers, so their sizes overlap.
    summary = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in counts.items()) or "nothing"
    output.note(f"{verb}: {summary}" + (f"; {len(report.failed)} could not be removed" if report.failed else ""))
    return 1 if report.failed else None
