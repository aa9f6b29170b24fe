"""Where pack keeps its own files on the build host: $XDG_CACHE_HOME/pack (default ~/.cache/pack),
never the user's truss directory or source tree.

    contexts/  rendered build contexts, one per truss, reused so the engine sees unchanged files
    models/    trusses generated from ModelBase files, one stable directory per source file
    builds/    what the last build of each truss used (its --base-image), for `pack run`
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pack"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.") or "model"


def keyed_dir(kind: str, path: Path) -> Path:
    """`<cache>/<kind>/<name>-<hash of the absolute path>`: stable for one path, distinct for two."""
    absolute = path.resolve()
    key = hashlib.sha256(str(absolute).encode()).hexdigest()[:12]
    return cache_root() / kind / f"{slug(absolute.stem if absolute.suffix else absolute.name)}-{key}"
