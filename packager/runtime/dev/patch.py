"""A patch from the watcher: parsed and checked whole before anything is written, then applied.

Every path is relative and normalised, and must stay inside its root (the app dir or the
packages dir, symbolic links resolved) and outside the model cache and pack's own runtime; one
bad entry rejects the patch and nothing is written. Files are written to temporary files beside
their targets first and moved into place with os.replace only when all of them were written.
"""

from __future__ import annotations

import base64
import binascii
import glob
import json
import os
import posixpath
import tempfile
from dataclasses import dataclass

from ..image_paths import RuntimePaths

APP, PACKAGES = "app", "packages"
DEFAULT_MODE = 0o644
_TOP_KEYS = {"files", "deleted", "changed"}
# pack's own package sits in the image's app dir (/app/packager): a patch never rewrites the server.
_PACK_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class PatchRejected(ValueError):
    """The patch is malformed or reaches outside what it may change (answered 400)."""


@dataclass(frozen=True)
class Write:
    path: str  # as sent, for messages
    target: str  # absolute
    content: bytes
    mode: int


@dataclass(frozen=True)
class Patch:
    writes: tuple[Write, ...]
    deletes: tuple[str, ...]  # absolute targets
    changed: tuple[str, ...]  # truss-relative names, for the log line

    def describe(self) -> str:
        names = self.changed or tuple(os.path.basename(w.target) for w in self.writes)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        return shown or "nothing"


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


class _Checker:
    def __init__(self, paths: RuntimePaths):
        self._roots = {APP: paths.app_dir, PACKAGES: paths.packages_dir}
        self._forbidden = ((paths.model_cache, "the model cache"), (_PACK_PACKAGE, "pack's runtime"))
        self._seen: set[str] = set()

    def target(self, entry: object, where: str) -> tuple[str, str]:
        """(path as sent, absolute target) of a `files` or `deleted` entry."""
        if not isinstance(entry, dict):
            raise PatchRejected(f"{where}: expected an object")
        root, path = entry.get("root"), entry.get("path")
        if root not in self._roots:
            raise PatchRejected(f"{where}.root: expected one of {sorted(self._roots)}, got {root!r}")
        if not isinstance(path, str) or not path:
            raise PatchRejected(f"{where}.path: expected a non-empty string")
        if "\0" in path or "\\" in path:
            raise PatchRejected(f"{where}.path {path!r}: NUL and backslash are not allowed")
        if posixpath.isabs(path):
            raise PatchRejected(f"{where}.path {path!r}: must be relative to its root")
        if posixpath.normpath(path) != path or path == "." or ".." in path.split("/"):
            raise PatchRejected(f"{where}.path {path!r}: must be normalised (no `.`, `..` or `//`)")
        root_dir = os.path.abspath(self._roots[str(root)])
        target = os.path.join(root_dir, *path.split("/"))
        real = os.path.realpath(target)
        if not _inside(real, os.path.realpath(root_dir)):
            raise PatchRejected(f"{where}.path {path!r}: leaves the {root} dir (through a link)")
        for directory, name in self._forbidden:
            if _inside(target, os.path.abspath(directory)) or _inside(real, os.path.realpath(directory)):
                raise PatchRejected(f"{where}.path {path!r}: inside {name}, which a patch never changes")
        if os.path.isdir(real):
            raise PatchRejected(f"{where}.path {path!r}: is a directory")
        if real in self._seen:
            raise PatchRejected(f"{where}.path {path!r}: named twice in one patch")
        self._seen.add(real)
        return path, target


def parse_patch(body: bytes, paths: RuntimePaths) -> Patch:
    """The patch in a request body, checked whole; PatchRejected names the first problem."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise PatchRejected(f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PatchRejected("the body must be a JSON object")
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise PatchRejected(f"unknown keys {unknown} (expected {sorted(_TOP_KEYS)})")
    files, deleted, changed = doc.get("files", []), doc.get("deleted", []), doc.get("changed", [])
    for key, value in (("files", files), ("deleted", deleted), ("changed", changed)):
        if not isinstance(value, list):
            raise PatchRejected(f"{key}: expected a list")
    if not all(isinstance(name, str) for name in changed):
        raise PatchRejected("changed: expected a list of strings")
    checker = _Checker(paths)
    writes = []
    for i, entry in enumerate(files):
        where = f"files[{i}]"
        path, target = checker.target(entry, where)
        try:
            content = base64.b64decode(entry.get("content_b64"), validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise PatchRejected(f"{where}.content_b64: expected base64 text") from None
        mode = entry.get("mode", DEFAULT_MODE)
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o7777:
            raise PatchRejected(f"{where}.mode: expected a permission number (0 to 4095), got {mode!r}")
        writes.append(Write(path, target, content, mode))
    deletes = tuple(checker.target(entry, f"deleted[{i}]")[1] for i, entry in enumerate(deleted))
    return Patch(tuple(writes), deletes, tuple(changed))


def apply_patch(patch: Patch) -> None:
    """Write every file (all or, when a temporary file cannot be written, none), then delete.
    Raises OSError."""
    staged: list[tuple[str, Write]] = []
    try:
        for write in patch.writes:
            directory = os.path.dirname(write.target)
            os.makedirs(directory, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=directory, prefix=".pack-patch-")
            staged.append((temp, write))
            with os.fdopen(fd, "wb") as fh:
                fh.write(write.content)
                os.fchmod(fh.fileno(), write.mode)
    except BaseException:
        for temp, _ in staged:
            _remove(temp)
        raise
    for temp, write in staged:
        os.replace(temp, write.target)
        _forget_bytecode(write.target)
    for target in patch.deletes:
        _remove(target)
        _forget_bytecode(target)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _forget_bytecode(source: str) -> None:
    # A .pyc is trusted while the source's size and mtime (whole seconds) match: an edit of the
    # same length within the same second would otherwise import the previous code.
    if not source.endswith(".py"):
        return
    directory, name = os.path.split(source)
    for cached in glob.glob(os.path.join(directory, "__pycache__", glob.escape(name[:-3]) + ".*.pyc")):
        _remove(cached)
