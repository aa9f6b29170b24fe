"""The image's ENTRYPOINT: python3 -m packager.runtime.entrypoint

Its very first act is starting the weight prefetch (a separate OS process, prefetch/worker.py),
before the config is parsed and before anything heavy is imported, so the download overlaps
everything that follows without competing for this interpreter's GIL. Then serving/start.py
reads the config and serves:

* config with `docker_server` -> serving/docker_server.py: prefetch, then the user's
  start_command behind Truss's routes; the container exits with the server's status;
* otherwise -> serving/server.py: Truss's HTTP contract around model/model.py.

Exit status: 0 after a SIGTERM drain, 1 when the model cannot load (or the config is unusable),
the server's own status in docker_server mode.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from .image_paths import RuntimePaths
from .prefetch.process import Prefetch
from .timeline import Timeline

if TYPE_CHECKING:
    from .serving.server import StartControl

EXIT_GRACE_SECONDS = 5.0


def main() -> int:
    timeline = Timeline()  # offsets count from process creation, read from /proc
    paths = RuntimePaths.from_env()
    prefetch = Prefetch(paths, timeline).start()  # first: everything below overlaps the download
    try:
        from .serving.start import serve  # after the spawn: its imports overlap the download

        return serve(paths, timeline, prefetch, dev_control)
    finally:
        prefetch.stop()  # a worker still running (SIGTERM, failed load) ends and is reaped


def dev_control() -> StartControl:
    """The reload control of `pack watch`; called only when its variables are set. Images from
    `pack build` lack packager/runtime/dev (ImportError), and dev imports serving, not the
    reverse: so the entrypoint hands it over."""
    from .dev.control import start_control

    return start_control


def exit_with(code: int) -> None:
    """Exit even if user threads that are not daemons would keep the interpreter alive: as PID 1
    a hung exit would keep the container running after the server stopped."""
    def force() -> None:
        time.sleep(EXIT_GRACE_SECONDS)
        os._exit(code)

    threading.Thread(target=force, daemon=True, name="pack-exit").start()
    sys.exit(code)


if __name__ == "__main__":
    exit_with(main())
