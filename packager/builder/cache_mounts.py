"""Which entries of the engine's BuildKit cache are pack's cache mounts (`pack cleanup`).

BuildKit lists a cache mount as `cached mount <target> from exec <argv of the step that first used
it>` and does not record the mount's id, so an entry is pack's when its target is one of pack's
cache mounts' (render.context.CACHE_MOUNTS) and its command is one of pack's steps: it installs
from pack's files (IMAGE_PACK_FILES), or it is the system_packages line. Another project's cache
at the same target, made by other commands, is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..engine import CacheEntry
from ..render.context import APT_INSTALL, CACHE_MOUNTS, IMAGE_PACK_FILES

CACHE_MOUNT_KIND = "exec.cachemount"
_DESCRIPTION = re.compile(r"^cached mount (?P<target>\S+) from exec (?:/bin/sh -c )?(?P<command>.*)$", re.DOTALL)


def is_pack_cache_mount(entry: CacheEntry) -> bool:
    if entry.kind != CACHE_MOUNT_KIND:
        return False
    match = _DESCRIPTION.match(entry.description)
    if match is None or match["target"] not in {m.target for m in CACHE_MOUNTS}:
        return False
    command = match["command"]
    return f"{IMAGE_PACK_FILES}/" in command or command.startswith(APT_INSTALL + " ")


def pack_cache_mounts(entries: Iterable[CacheEntry]) -> list[CacheEntry]:
    """pack's cache mounts among `entries` by id, those a running build uses excluded (BuildKit
    would keep them anyway)."""
    return sorted((e for e in entries if is_pack_cache_mount(e) and not e.in_use), key=lambda e: e.id)
