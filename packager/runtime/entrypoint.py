"""The image's ENTRYPOINT: python3 -m packager.runtime.entrypoint

Its very first act is starting the weight prefetch (a separate OS process, prefetch_worker.py),
before the config is parsed and before anything heavy is imported, so the download overlaps
everything that follows without competing for this interpreter's GIL. Then:

* config with `docker_server` -> docker_server.run: prefetch, then the user's start_command
  behind Truss's routes; the container exits with the server's status;
* otherwise -> server.ModelServer: Truss's HTTP contract around model/model.py.

Exit status: 0 after a SIGTERM drain, 1 when the model cannot load (or the config is unusable),
the server's own status in docker_server mode.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

from packager import constants

from .image_paths import RuntimePaths
from .prefetch import Prefetch
from .timeline import Timeline

log = logging.getLogger("pack.entrypoint")
EXIT_GRACE_SECONDS = 5.0


def configure_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def server_port(default: int) -> int:
    raw = os.environ.get(constants.INFERENCE_SERVER_PORT, "").strip()
    return int(raw) if raw.isdigit() else default


def main() -> int:
    timeline = Timeline()  # offsets count from process creation, read from /proc
    paths = RuntimePaths.from_env()
    prefetch = Prefetch(paths, timeline).start()  # first: everything below overlaps the download
    try:
        return serve(paths, timeline, prefetch)
    finally:
        prefetch.stop()  # a worker still running (SIGTERM, failed load) ends and is reaped


def serve(paths: RuntimePaths, timeline: Timeline, prefetch: Prefetch) -> int:
    configure_logging(False)
    from .app_config import ConfigUnavailable, ServingSettings, load_config

    try:
        config = load_config(paths)
        settings = ServingSettings.from_config(config)
    except (ConfigUnavailable, OSError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    if settings.debug_logs:
        configure_logging(True)
    # The image sets these as ENV already; applying them here keeps local runs identical, and a
    # value given at `docker run -e` still wins.
    for name, value in settings.environment_variables.items():
        os.environ.setdefault(name, value)
    os.chdir(paths.app_dir)  # Truss runs with cwd /app; data_dir="data" style paths rely on it

    if settings.docker_server is not None:
        from .docker_server import run_docker_server

        return run_docker_server(paths, settings, timeline, prefetch)

    from .server import ModelServer

    port = server_port(constants.DEFAULT_SERVER_PORT)
    return ModelServer(paths, config, settings, timeline, prefetch, port).run()


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
