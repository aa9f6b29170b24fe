"""`pack fetch`: download a weights manifest on a host (pre-warm a node cache, a volume, CI)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from .. import constants
from ..errors import PackError, TransferError
from ..runtime.manifest import Manifest, ManifestError, load, parse
from ..runtime.transfer import (
    InsufficientSpace,
    LogReporter,
    Reporter,
    TransferFailed,
    TransferSettings,
    fetch,
)
from ..runtime.transfer.progress import human_bytes
from . import output

LOCK_FILE = "pack.lock"


def read_manifest(source: Path, lock: Path | None = None) -> Manifest:
    """MANIFEST is a manifest file, or a truss directory whose pack.lock (or `lock`, the lock of
    another config file) embeds one."""
    try:
        if source.is_dir():
            lock = lock or source / LOCK_FILE
            if not lock.is_file():
                raise PackError(
                    f"{lock} does not exist, so there is no pinned weights manifest to fetch",
                    hint=f"resolve the truss first (it writes {LOCK_FILE}), or pass a manifest file",
                )
            try:
                doc = json.loads(lock.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise PackError(f"{lock} is not valid JSON: {exc}") from None
            embedded = doc.get("manifest") if isinstance(doc, dict) else None
            if embedded is None:
                raise PackError(f"{lock} has no \"manifest\" key",
                                hint="re-create the lock file with this version of pack")
            return parse(json.dumps(embedded))
        return load(str(source))
    except FileNotFoundError:
        raise PackError(f"{source} does not exist") from None
    except ManifestError as exc:
        raise TransferError(f"{source}: invalid weights manifest: {exc}") from None


@click.command("fetch")
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option("--dest", required=True, type=click.Path(path_type=Path),
              help="Directory standing in for /app/model_cache (/app/model_cache/x/a -> DEST/x/a).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              envvar=constants.PACK_CACHE_DIR,
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
    lock = None
    if config_file is not None:
        from .. import api
        from ..plan.lock import lock_path

        lock = lock_path(api.check(manifest, config=config_file))
    doc = read_manifest(manifest, lock)
    reporter: Reporter
    if sys.stderr.isatty():
        from .transfer_progress import RichReporter

        reporter = RichReporter(output.err)
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        reporter = LogReporter()
    try:
        result = fetch(
            doc, str(dest), cache_dir=str(cache_dir) if cache_dir else None, workers=workers,
            reporter=reporter, secrets_dir=str(secrets_dir) if secrets_dir else None,
            stats_path=str(stats) if stats else None,
            settings=TransferSettings(direct_io=direct_io),
        )
    except InsufficientSpace as exc:
        raise TransferError(f"{exc.problem()}\nNothing was downloaded.", hint=exc.fix) from None
    except TransferFailed as exc:
        raise TransferError(str(exc), hint="fix the causes above and re-run: completed ranges "
                            "are kept and resume") from None
    except ManifestError as exc:
        raise TransferError(f"{manifest}: {exc}") from None
    except OSError as exc:
        raise TransferError(f"cannot write into {dest}: {exc}") from None
    output.success(
        f"{len(result.files)} files in {os.fspath(dest)}: {human_bytes(result.bytes_downloaded)} "
        f"downloaded in {result.seconds:.1f}s, {result.cache_hits} from cache"
    )
