"""pack.lock: the pinned weights manifest beside config.yaml, so renders are offline and
reproducible (like uv.lock). It records a digest of the inputs it was resolved from; a config
whose model_cache changed since makes the lock stale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from packager import __version__
from packager.config import CONFIG_FILENAME, LoadedConfig
from packager.errors import PlanError
from packager.runtime.manifest import Entry, Manifest, ManifestError, ManifestBuilder

from .lock_file import LOCK_FILENAME, LOCK_FORMAT, Lock, lock_text, read_lock, write_lock
from .sources import Credentials, SourceSpec, hf_cache_root_for, resolve_source, weights_spec

__all__ = ["LOCK_FILENAME", "LOCK_FORMAT", "Lock", "ensure_lock", "keep_pinned_commits", "lock_path", "lock_text",
           "read_lock", "resolve_manifest", "source_specs", "weights_inputs_digest", "write_lock"]

def weights_inputs_digest(loaded: LoadedConfig) -> str:
    """Digest of everything the manifest is resolved from (not of the rest of the config)."""
    config = loaded.config
    inputs = {
        "model_cache": [r.model_dump(mode="json") for r in config.model_cache],
        "hf_cache_root": hf_cache_root_for(config.environment_variables),
    }
    if config.weights:  # only when present, so locks written before `weights:` support stay fresh
        inputs["weights"] = [w.model_dump(mode="json") for w in config.weights]
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def lock_path(loaded: LoadedConfig) -> Path:
    """DIR/pack.lock for DIR/config.yaml; another config file (`--config other.yaml`) pins its
    own weights in a lock beside it named after it (other.pack.lock)."""
    if loaded.file.resolve() == (loaded.truss_dir / CONFIG_FILENAME).resolve():
        return loaded.truss_dir / LOCK_FILENAME
    return loaded.file.with_name(f"{loaded.file.stem}.{LOCK_FILENAME}")


def source_specs(loaded: LoadedConfig) -> list[SourceSpec]:
    """Every weight source of the config (model_cache entries, then `weights:` sources)."""
    config = loaded.config
    specs = [
        SourceSpec(
            repo_id=repo.repo_id, use_volume=repo.use_volume, revision=repo.revision,
            kind=repo.kind.value, allow_patterns=repo.allow_patterns,
            ignore_patterns=repo.ignore_patterns, volume_folder=repo.volume_folder,
            runtime_secret_name=repo.runtime_secret_name, index=index,
        )
        for index, repo in enumerate(config.model_cache)
    ]
    specs += [
        weights_spec(
            source.source, source.mount_location, allow_patterns=source.allow_patterns,
            ignore_patterns=source.ignore_patterns, secret_name=source.secret_name, index=index,
        )
        for index, source in enumerate(config.weights)
    ]
    return specs


def resolve_manifest(loaded: LoadedConfig, credentials: Credentials) -> Manifest:
    """Ask every source (network) for its files, pinned; the slow, online half of planning."""
    builder = ManifestBuilder()
    cache_root = hf_cache_root_for(loaded.config.environment_variables)
    for spec in source_specs(loaded):
        for entry in resolve_source(spec, credentials, hf_cache_root=cache_root):
            builder.add(entry)
    section = "weights" if loaded.config.weights else "model_cache"
    try:
        return builder.build(generator=f"pack {__version__}")
    except ManifestError as exc:
        raise PlanError(f"{section} resolves to an unsafe manifest: {exc}",
                        hint="check volume_folder / mount_location values and object keys") from None


def keep_pinned_commits(manifest: Manifest, previous: Manifest | None) -> Manifest:
    """A Hugging Face file whose bytes did not change keeps the commit it was pinned at before.

    That commit still serves the same bytes (git history is immutable), and the download stage
    of an unchanged file keeps its build cache: a new revision that changes one file re-fetches
    and re-layers only that file's group. Where the snapshot lives (snapshots/<sha>/, refs/) is
    decided by the destination, which always names the newly resolved commit.
    """
    if previous is None:
        return manifest

    def key(e: Entry) -> tuple[str, ...]:
        return (e.source.repo, e.source.path, e.hash.algorithm, e.hash.digest, str(e.size))

    pinned = {key(e): e.revision.resolved for e in previous.entries if e.source.kind == "hf" and e.verifiable}
    entries = tuple(
        replace(e, revision=replace(e.revision, resolved=pinned[key(e)]))
        if e.source.kind == "hf" and e.verifiable and key(e) in pinned else e
        for e in manifest.entries
    )
    return Manifest(entries, generator=manifest.generator)


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
    if not loaded.config.model_cache and not loaded.config.weights:
        return Lock(digest, Manifest(generator=f"pack {__version__}"))
    path = lock_path(loaded)
    current = read_lock(path)
    if current is not None and current.inputs_digest == digest and not refresh:
        return current
    if locked:
        why = "missing" if current is None else "stale: its weight sources changed since it was written"
        other = "" if path.name == LOCK_FILENAME else f" --config {loaded.file}"
        raise PlanError(f"{path} is {why}", hint=f"run `pack lock {loaded.truss_dir}{other}` and commit it")
    manifest = resolve_manifest(loaded, credentials or Credentials.from_environment())
    manifest = keep_pinned_commits(manifest, current.manifest if current is not None else None)
    lock = Lock(digest, manifest)
    write_lock(path, lock)
    if on_resolved is not None:
        on_resolved(manifest)
    return lock
