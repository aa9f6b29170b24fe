"""pack.lock: the pinned weights manifest beside config.yaml, so renders are offline and
reproducible (like uv.lock). It records a digest of the inputs it was resolved from; a config
whose model_cache changed since makes the lock stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from packager import __version__
from packager.config import LoadedConfig
from packager.errors import PlanError
from packager.runtime.manifest import Manifest, ManifestError, ManifestBuilder, parse

from .sources import Credentials, SourceSpec, hf_cache_root_for, resolve_source

LOCK_FILENAME = "pack.lock"
LOCK_FORMAT = "pack-lock/1"


@dataclass(frozen=True)
class Lock:
    inputs_digest: str
    manifest: Manifest


def weights_inputs_digest(loaded: LoadedConfig) -> str:
    """Digest of everything the manifest is resolved from (not of the rest of the config)."""
    config = loaded.config
    inputs = {
        "model_cache": [r.model_dump(mode="json") for r in config.model_cache],
        "hf_cache_root": hf_cache_root_for(config.environment_variables),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def lock_path(loaded: LoadedConfig) -> Path:
    return loaded.truss_dir / LOCK_FILENAME


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


def resolve_manifest(loaded: LoadedConfig, credentials: Credentials) -> Manifest:
    """Ask every source (network) for its files, pinned; the slow, online half of planning."""
    config = loaded.config
    builder = ManifestBuilder()
    cache_root = hf_cache_root_for(config.environment_variables)
    for index, repo in enumerate(config.model_cache):
        spec = SourceSpec(
            repo_id=repo.repo_id, use_volume=repo.use_volume, revision=repo.revision,
            kind=repo.kind.value, allow_patterns=repo.allow_patterns,
            ignore_patterns=repo.ignore_patterns, volume_folder=repo.volume_folder,
            runtime_secret_name=repo.runtime_secret_name, index=index,
        )
        for entry in resolve_source(spec, credentials, hf_cache_root=cache_root):
            builder.add(entry)
    try:
        return builder.build(generator=f"pack {__version__}")
    except ManifestError as exc:
        raise PlanError(f"model_cache resolves to an unsafe manifest: {exc}",
                        hint="check volume_folder values and object keys") from None


def ensure_lock(
    loaded: LoadedConfig,
    credentials: Credentials | None = None,
    *,
    locked: bool = False,
    refresh: bool = False,
    on_resolved: Callable[[Manifest], None] | None = None,
) -> Lock:
    """The lock to build from: the existing one when fresh, else resolve and write a new one.

    locked=True (CI): never resolve; a missing or stale lock is an error.
    """
    digest = weights_inputs_digest(loaded)
    if not loaded.config.model_cache:
        return Lock(digest, Manifest(generator=f"pack {__version__}"))
    path = lock_path(loaded)
    current = read_lock(path)
    if current is not None and current.inputs_digest == digest and not refresh:
        return current
    if locked:
        why = "missing" if current is None else "stale: model_cache changed since it was written"
        raise PlanError(f"{path} is {why}", hint=f"run `pack lock {loaded.truss_dir}` and commit it")
    manifest = resolve_manifest(loaded, credentials or Credentials.from_environment())
    lock = Lock(digest, manifest)
    write_lock(path, lock)
    if on_resolved is not None:
        on_resolved(manifest)
    return lock
