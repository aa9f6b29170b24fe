"""`pack fetch`: download a weights manifest on a host (pre-warm a node cache, a volume, CI)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from .. import api
from . import output


@click.command("fetch")
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option("--dest", required=True, type=click.Path(path_type=Path),
              help="Directory standing in for /app/model_cache (/app/model_cache/x/a -> DEST/x/a).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              envvar=api.constants.PACK_CACHE_DIR,
              help="Content-addressed blob cache shared by runs and processes on this host.")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Concurrent requests (default: 4 per core, 8 to 64).")
@click.option("--direct-io/--no-direct-io", default=None,
              help="Write with O_DIRECT, past the page cache: for pre-warming a node with more "
                   "weights than free memory (the first read then fills the page cache). "
                   "Default: $PACK_TRANSFER_DIRECT_IO, else off.")
@click.option("--stats", type=click.Path(path_type=Path), default=None,
              help="Write a JSON stats file (bytes, seconds, per-file timings, cache hits).")
@click.option("--secrets-dir", type=click.Path(path_type=Path), default=None,
              help="Directory of secret files (default: $PACK_SECRETS_DIR, then /secrets).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="MANIFEST is a truss dir built with --config FILE: fetch what FILE's lock pins.")
def fetch_command(manifest: Path, dest: Path, cache_dir: Path | None, workers: int | None,
                  direct_io: bool | None, stats: Path | None, secrets_dir: Path | None,
                  config_file: Path | None = None) -> None:
    """Download, verify and place every file of MANIFEST (a manifest file or a truss dir)."""
    reporter: api.Reporter
    if output.live_view_allowed(sys.stderr):
        from .transfer_progress import RichReporter

        reporter = RichReporter(output.console())
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        reporter = api.LogReporter()
    result = api.fetch(manifest, dest, cache_dir=cache_dir, workers=workers, direct_io=direct_io, stats=stats,
                       secrets_dir=secrets_dir, config=config_file, reporter=reporter)
    output.success(
        f"{len(result.files)} files in {os.fspath(dest)}: {api.human_bytes(result.bytes_downloaded)} "
        f"downloaded in {result.seconds:.1f}s, {result.cache_hits} from cache"
    )
