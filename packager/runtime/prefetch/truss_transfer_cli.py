"""truss-transfer-cli: what Truss users put at the front of start_command
(`bash -c "truss-transfer-cli && my-server ..."`), kept working on pack's downloader.

    truss-transfer-cli [DOWNLOAD_DIR]      (DOWNLOAD_DIR defaults to /app/model_cache)

It performs or awaits the same prefetch as the entrypoint: if the entrypoint's prefetch worker
is running it waits for it (they share an flock), if it already finished for this manifest it
returns at once, otherwise it runs a prefetch worker itself (resuming and verifying like the
entrypoint). This command does not outlive the weights it places, so with a node cache on
another filesystem it places copies, never symlinks that eviction could break.
Exit 0 when every file is in place (or there is no manifest), 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from ..image_paths import RuntimePaths
from ..timeline import Timeline
from .process import Prefetch, PrefetchFailed
from .state import DONE, exclusive, file_sha256, read_state

log = logging.getLogger("truss-transfer-cli")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="truss-transfer-cli",
                                     description="Fetch the image's model_cache weights (pack).")
    parser.add_argument("download_dir", nargs="?", default=None,
                        help="where /app/model_cache files go (default: /app/model_cache)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    paths = RuntimePaths.from_env()
    if args.download_dir and os.path.abspath(args.download_dir) != paths.model_cache:
        paths = dataclasses.replace(paths, model_cache=os.path.abspath(args.download_dir))
    if not os.path.isfile(paths.manifest):
        log.info("no weights manifest at %s: nothing to fetch", paths.manifest)
        return 0
    try:
        sha = file_sha256(paths.manifest)
        with exclusive(paths.prefetch_lock):  # waits while another process is fetching
            state = read_state(paths.prefetch_state)
        if state.get("state") == DONE and state.get("manifest_sha256") == sha \
                and paths.model_cache == RuntimePaths.from_env().model_cache:
            log.info("weights already in place (fetched by process %s)", state.get("pid"))
            return 0
        prefetch = Prefetch(paths, Timeline(), pin_cache=False).start()  # a worker process
        try:
            prefetch.wait()
        finally:
            prefetch.stop()
    except (PrefetchFailed, OSError) as exc:
        log.error("weights could not be fetched: %s", exc)
        return 1
    log.info("weights in place under %s", paths.model_cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
