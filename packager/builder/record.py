"""What the last build of a truss used, kept in pack's cache (never in the truss directory), so
`pack run DIR` after `pack build DIR --base-image X` builds FROM X again instead of the default
base (which an offline machine cannot pull)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..cache_dirs import keyed_dir

BUILDS_DIR = "builds"
RECORD_FILE = "last-build.json"


@dataclass(frozen=True)
class BuildRecord:
    target: str  # the config file (or ModelBase source) the build was for
    base_image: str | None  # the --base-image it was given; None: the config's or the default
    image_id: str
    tag: str


def record_path(key: Path) -> Path:
    return keyed_dir(BUILDS_DIR, key) / RECORD_FILE


def write_record(key: Path, record: BuildRecord) -> bool:
    """Replace the record atomically; False when the cache is not writable (a build that
    succeeded does not fail over a convenience: the next run then uses the default base)."""
    path = record_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(record), fh, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def read_record(key: Path) -> BuildRecord | None:
    """The record, or None when there is none (or it cannot be read: it is only a convenience)."""
    try:
        doc = json.loads(record_path(key).read_text(encoding="utf-8"))
        return BuildRecord(target=str(doc["target"]), base_image=doc.get("base_image"),
                           image_id=str(doc["image_id"]), tag=str(doc["tag"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


__all__ = ["BuildRecord", "read_record", "record_path", "write_record"]
