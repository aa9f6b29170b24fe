"""The serving half of the entrypoint: read the image's config, set up logging and the
environment, then serve in the mode the config asks for.

* config with `docker_server` -> docker_server.run_docker_server: the weights first, then the
  user's start_command behind Truss's routes; the result is the server's own exit status;
* otherwise -> server.ModelServer: Truss's HTTP contract around model/model.py.

Called by entrypoint.main after the prefetch has started, so everything imported here (and by
the modules it picks) overlaps the download.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from packager import constants

from ..image_paths import RuntimePaths
from ..prefetch.process import Prefetch
from ..timeline import Timeline
from . import log_format
from .app_config import ConfigUnavailable, ServingSettings, load_config

if TYPE_CHECKING:
    from .server import StartControl

log = logging.getLogger("pack.entrypoint")


def configure_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(log_format.formatter(sys.stderr))  # JSON lines, as Truss writes them
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler], force=True)


def server_port(default: int) -> int:
    raw = os.environ.get(constants.INFERENCE_SERVER_PORT, "").strip()
    return int(raw) if raw.isdigit() else default


def serve(paths: RuntimePaths, timeline: Timeline, prefetch: Prefetch,
          dev_control: Callable[[], StartControl] | None = None) -> int:
    """Serve until stopped; the process's exit status (1 when the config is unusable).
    dev_control imports the reload control (docker_server mode has none: `pack watch` restarts it)."""
    configure_logging(False)
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

    from . import tracing
    from .server import ModelServer

    tracing.configure(settings.enable_tracing)
    port = server_port(constants.DEFAULT_SERVER_PORT)
    return ModelServer(paths, config, settings, timeline, prefetch, port, dev_control=dev_control).run()
