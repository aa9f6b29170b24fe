"""The pack.lock file format: a pinned weights manifest and the digest of the inputs it was
resolved from, written atomically. Reading it needs nothing of the config (`pack fetch` reads a
lock on a node that has only the file)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packager import __version__
from packager.errors import PlanError
from packager.runtime.manifest import Manifest, ManifestError, parse

LOCK_FILENAME = "pack.lock"
LOCK_FORMAT = "pack-lock/1"


@dataclass(frozen=True)
class Lock:
    inputs_digest: str
    manifest: Manifest


def read_lock(path: Path) -> Lock | None:
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != LOCK_FORMAT:
            raise ValueError(f"unknown format {doc.get('format')!r}")
        manifest = parse(json.dumps(doc["manifest"]))
        return Lock(inputs_digest=doc["inputs_digest"], manifest=manifest)
    except (ValueError, KeyError, TypeError, ManifestError) as exc:
        raise PlanError(f"{path} is not a valid pack lock file: {exc}",
                        hint=f"delete it and run `pack lock {path.parent}`") from None


def lock_text(lock: Lock) -> str:
    doc = {
        "format": LOCK_FORMAT,
        "generator": f"pack {__version__}",
        "inputs_digest": lock.inputs_digest,
        "manifest": json.loads(lock.manifest.to_json()),
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def write_lock(path: Path, lock: Lock) -> None:
    """Atomic replace: a reader sees the old lock or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(lock_text(lock))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


