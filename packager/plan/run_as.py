"""Which user the server runs as, and what that user must be able to write or read.

pack's own build steps always run as root (`USER root` right after FROM). The server runs as
docker_server.run_as_user_id when set, else as the base image's own USER, restored at the end of
the Dockerfile (as Truss does for a base that is not root). For a user other than root:

- what the runtime writes (volume-mode weights under /app/model_cache or a `weights:`
  mount_location, the node cache volume) is created early and owned by that user; a named
  volume created on first use takes the ownership of the image's directory;
- baked Hugging Face files stay under /root/.cache/huggingface/hub, where pack.lock pinned them:
  HF_HUB_CACHE points there (unless environment_variables place the cache), /root becomes
  traversable and the cache's directories (not the files, which stay root-owned and world-
  readable: a chown would copy every byte into a new layer) are handed to the user, so
  huggingface_hub finds the baked snapshot and can still write locks, refs and new downloads.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from packager.config import TrussConfig
from packager.constants import MODEL_CACHE_DIR
from packager.runtime.manifest import Manifest

from .model import BaseImage, WeightsMode
from .sources.layout import hf_cache_root_for

_HF_CACHE_ENV = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME")
ROOT_HOME = "/root"


@dataclass(frozen=True)
class RunAs:
    user: str | None  # None: root
    writable_dirs: tuple[str, ...] = ()
    hf_cache: str | None = None  # baked HF hub cache under /root to open to the user
    env: tuple[tuple[str, str], ...] = ()  # ENV the user needs beyond environment_variables
    notes: tuple[str, ...] = ()


def plan_run_as(config: TrussConfig, base: BaseImage, mode: WeightsMode, manifest: Manifest) -> RunAs:
    server = config.docker_server
    if server is not None and server.run_as_user_id is not None:
        user: str | None = str(server.run_as_user_id)
    else:
        user = base.user
    if user is None:
        return RunAs(None)
    writable: list[str] = []
    if mode is WeightsMode.VOLUME:
        writable.append(MODEL_CACHE_DIR)
        writable += [posixpath.normpath(w.mount_location) for w in config.weights]
    hub = hf_cache_root_for(config.environment_variables)
    baked_hf = mode is WeightsMode.BAKE and any(
        e.source.kind == "hf" and e.destination.startswith(hub + "/") for e in manifest.entries)
    hf_cache = hub if baked_hf and hub.startswith(ROOT_HOME + "/") else None
    env: tuple[tuple[str, str], ...] = ()
    notes = []
    if hf_cache is not None:
        if not any(config.environment_variables.get(name) for name in _HF_CACHE_ENV):
            env = (("HF_HUB_CACHE", hf_cache),)
        notes.append(f"the server runs as `{user}`: baked Hugging Face files stay in {hf_cache} "
                     "(readable by every user; HF_HUB_CACHE points there)")
    return RunAs(user, tuple(dict.fromkeys(writable)), hf_cache, env, tuple(notes))
