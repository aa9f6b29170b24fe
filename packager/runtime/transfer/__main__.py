"""In-image entry point: python -m packager.runtime.transfer MANIFEST --dest DIR [...]

Plain log lines (no terminal assumed); exit 0 when every file is in place, 1 otherwise.
--cache defaults to $PACK_CACHE_DIR; --workers to $PACK_TRANSFER_WORKERS.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from packager import constants

from ..manifest import ManifestError, load
from .api import fetch
from .errors import TransferFailed
from .layout import marker_path, remove_quietly
from .progress import LogReporter
from .settings import TransferSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m packager.runtime.transfer")
    parser.add_argument("manifest")
    parser.add_argument("--dest", default=None,
                        help="root replacing /app/model_cache (default: absolute destinations)")
    parser.add_argument("--cache", default=os.environ.get(constants.PACK_CACHE_DIR) or None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--stats", default=None)
    parser.add_argument("--chunk-size", type=int, default=None, help="bytes per ranged request")
    parser.add_argument("--direct-io", action="store_true", default=None,
                        help="write with O_DIRECT, past the page cache (default: $PACK_TRANSFER_DIRECT_IO)")
    parser.add_argument("--secrets-dir", default=None)
    parser.add_argument("--log-interval", type=float, default=5.0)
    parser.add_argument("--drop-markers", action="store_true",
                        help="remove the verified markers once every file is in place (the files go "
                        "into an image layer, which nothing rewrites)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    log = logging.getLogger("packager.transfer")
    settings = TransferSettings(chunk_size=args.chunk_size or 0, direct_io=args.direct_io)
    try:
        manifest = load(args.manifest)
        result = fetch(manifest, args.dest, cache_dir=args.cache, workers=args.workers,
                       reporter=LogReporter(log, args.log_interval), secrets_dir=args.secrets_dir,
                       stats_path=args.stats, settings=settings)
        if args.drop_markers:
            remove_quietly(*(marker_path(f.destination, None) for f in result.files))
        log.info("%s %s", constants.TRANSFER_RESULT_MARK, json.dumps(
            {"files": len(result.files), "downloaded_bytes": result.bytes_downloaded, "cache_hits": result.cache_hits}))
    except (OSError, ManifestError) as exc:
        log.error("%s", exc)
        return 1
    except TransferFailed as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
