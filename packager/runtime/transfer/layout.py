"""Where each entry lands, and the hidden files kept beside it.

Destination mapping (`dest_root`):
* None: the entry's absolute destination is used as is (inside an image).
* a directory: destinations under /app/model_cache are placed relative to it
  (`/app/model_cache/x/a.bin` -> `<dest_root>/x/a.bin`); any other absolute destination (e.g. a
  bake-mode HF cache path) is placed under dest_root with its full path
  (`/root/.cache/hf/a` -> `<dest_root>/root/.cache/hf/a`).

Any destination that is not normalised, contains "..", or resolves (through symlinks already on
disk) outside its root is refused before anything is downloaded.

Beside `<dir>/<name>` the engine keeps dot-files, invisible to loaders that glob for weights:
`.<name>.pack-partial` (pre-sized temp file), `.<name>.pack-partial.journal` (resume journal) and
`.<name>.pack-ok` (verified marker). A file at its destination is trusted only when the marker
matches its size, inode, mtime and the manifest digest; a correct size alone is never enough.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from packager import constants

from ..manifest import Entry, ManifestError


class UnsafeDestination(ManifestError):
    """A destination would be written outside its root."""


def _refuse(entry: Entry, why: str) -> UnsafeDestination:
    return UnsafeDestination(f"destination {entry.destination!r} refused: {why}")


def map_destination(entry: Entry, dest_root: str | None,
                    realpath: Callable[[str], str] = os.path.realpath) -> str:
    """`realpath`: a memoised os.path.realpath when mapping many entries (plan_targets): tens of
    thousands of files share a few hundred directories."""
    dest = entry.destination
    if not dest.startswith("/") or "\x00" in dest:
        raise _refuse(entry, "not an absolute path")
    if any(part == ".." for part in dest.split("/")) or posixpath.normpath(dest) != dest:
        raise _refuse(entry, "it is not normalised and may escape its folder with '..'")
    if dest_root is None:
        root = constants.MODEL_CACHE_DIR if dest.startswith(constants.MODEL_CACHE_DIR + "/") else "/"
        final = dest
    else:
        root = os.path.abspath(dest_root)
        if dest.startswith(constants.MODEL_CACHE_DIR + "/"):
            rel = dest[len(constants.MODEL_CACHE_DIR) + 1 :]
        else:
            rel = dest.lstrip("/")
        if not rel:
            raise _refuse(entry, "it names the root itself")
        final = os.path.join(root, rel)
    # Symlinked directories already on disk must not lead outside the root either.
    real_root = realpath(root)
    real_parent = realpath(os.path.dirname(final))
    if root != "/" and not (real_parent + "/").startswith(real_root.rstrip("/") + "/"):
        raise _refuse(entry, f"it resolves outside {root}")
    return final


def sidecar(final: str, suffix: str) -> str:
    directory, name = os.path.split(final)
    return os.path.join(directory, f".{name}.pack-{suffix}")


def partial_path(final: str) -> str:
    return sidecar(final, "partial")


def journal_path(partial: str) -> str:
    return partial + ".journal"


@dataclass(frozen=True)
class Marker:
    size: int
    algorithm: str
    digest: str
    inode: int
    mtime_ns: int

    @classmethod
    def for_file(cls, path: str, algorithm: str, digest: str) -> Marker:
        st = os.stat(path)
        return cls(st.st_size, algorithm, digest, st.st_ino, st.st_mtime_ns)


def marker_path(final: str, markers_dir: str | None) -> str:
    """Where the verified marker of `final` lives: beside it, or (markers_dir) in a directory of
    their own, so the destination tree holds exactly the source's files (a model that lists its
    mount_location sees what the source has)."""
    if markers_dir is None:
        return sidecar(final, "ok")
    name = hashlib.sha256(final.encode()).hexdigest()[:32]
    return os.path.join(markers_dir, f"{name}.{os.path.basename(final)[:64]}.ok")


def write_marker(path: str, marker: Marker) -> None:
    """Write the marker file at `path` (marker_path) atomically; its directory exists (the
    file's own, or the markers dir fetch() made)."""
    tmp = f"{path}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, json.dumps(marker.__dict__, sort_keys=True).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def marker_matches(final: str, entry: Entry, marker: str | None = None) -> bool:
    """True when `final` is the verified file for this entry (no re-download, no re-hash).
    marker: the marker's path (default: beside final)."""
    try:
        with open(marker or sidecar(final, "ok"), encoding="utf-8") as fh:
            found = Marker(**json.load(fh))
        st = os.stat(final)
    except (OSError, ValueError, TypeError):
        return False
    return (
        found.size == entry.size == st.st_size
        and found.inode == st.st_ino
        and found.mtime_ns == st.st_mtime_ns
        and found.algorithm == entry.hash.algorithm
        and found.digest == entry.hash.digest
    )


def remove_quietly(*paths: str) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
