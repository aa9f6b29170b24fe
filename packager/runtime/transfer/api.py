"""fetch(): download every entry of a manifest, verified, into place."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping

from ..manifest import Manifest
from .cache import BlobCache
from .credentials import secrets_dir_from
from .download import Transfer
from .engine import Priority, Scheduler
from .errors import FileFailure, TransferFailed
from .http_pool import ConnectionPool
from .job import Target, group_jobs
from .layout import UnsafeDestination, map_destination, marker_path
from .progress import NullReporter, Reporter
from .results import FetchResult
from .settings import TransferSettings
from .sources import SourceFactory
from .space import ensure_room


def plan_targets(manifest: Manifest, dest_root: str | None, markers_dir: str | None = None) -> list[Target]:
    """Map every destination first, so an unsafe one refuses the whole manifest up front."""
    targets: list[Target] = []
    seen: dict[str, str] = {}
    real = functools.lru_cache(maxsize=None)(os.path.realpath)
    for entry in manifest.entries:
        final = map_destination(entry, dest_root, real)
        if final in seen:
            raise UnsafeDestination(
                f"destinations {seen[final]!r} and {entry.destination!r} both map to {final}")
        seen[final] = entry.destination
        targets.append(Target(entry, final, marker_path(final, markers_dir)))
    return targets


def fetch(
    manifest: Manifest,
    dest_root: str | None = None,
    *,
    cache_dir: str | None = None,
    cache_instance: str | None = None,
    workers: int | None = None,
    reporter: Reporter | None = None,
    secrets_dir: str | None = None,
    stats_path: str | None = None,
    settings: TransferSettings | None = None,
    env: Mapping[str, str] | None = None,
    priority: Priority | None = None,
    markers_dir: str | None = None,
) -> FetchResult:
    """Fetch, verify and place every manifest entry; raise TransferFailed if any file failed.

    dest_root: None writes each entry to its absolute destination; a directory maps
    `/app/model_cache/<rest>` to `<dest_root>/<rest>` (other absolute paths to
    `<dest_root>/<path>`). cache_dir: a content-addressed blob cache shared between runs and
    processes (None = no cache; callers pass PACK_CACHE_DIR themselves). cache_instance: the pin
    set (cache_pins.hold_instance) of a process that outlives the destinations; with it a
    destination on another filesystem than the cache is a symlink to the verified blob, which
    eviction then keeps (without it, a copy). secrets_dir defaults to
    $PACK_SECRETS_DIR, then /secrets. env: the environment to read (default: a snapshot of
    os.environ, which is never modified). The stats file is written even when files failed.
    priority: lifts settings.worker_nice from another thread (engine.Priority). markers_dir:
    where the verified markers live (default: a dot-file beside each destination).
    Raises manifest.ManifestError (UnsafeDestination) before any download for unsafe paths, and
    space.InsufficientSpace (a TransferFailed) when a filesystem lacks room for what is left.
    """
    env = dict(os.environ) if env is None else env
    settings = (settings or TransferSettings()).resolved(env, workers)
    reporter = reporter or NullReporter()
    targets = plan_targets(manifest, dest_root, markers_dir)
    if markers_dir is not None:
        os.makedirs(markers_dir, exist_ok=True)
    jobs = group_jobs(targets)
    cache = BlobCache(cache_dir, settings.cache_max_bytes, cache_instance) if cache_dir else None
    pool = ConnectionPool(env, settings.connect_timeout, settings.stall_timeout)
    sources = SourceFactory(env, secrets_dir_from(secrets_dir, env), settings, pool)
    scheduler = Scheduler(settings, reporter, cache, priority)
    scheduler.on_thread_exit = pool.close_thread
    transfer = Transfer(settings, reporter, sources, cache, scheduler)

    ensure_room(jobs, cache)
    t0 = time.monotonic()
    reporter.start(len(targets), sum(t.entry.size for t in targets))
    scheduler.run(jobs, transfer.prepare)
    if cache is not None:
        cache.evict(keep={job.key for job in jobs})
    files = sorted(transfer.results, key=lambda r: r.destination)
    result = FetchResult(
        files=files,
        bytes_downloaded=sum(f.bytes_downloaded for f in files),
        bytes_total=sum(f.size for f in files),
        cache_hits=sum(1 for f in files if f.cache_hit),
        seconds=time.monotonic() - t0,
        workers=settings.workers,
        streams=scheduler.peak_streams,
    )
    reporter.finish(result)
    if stats_path:
        result.write_stats(stats_path)
    if result.failures:
        raise TransferFailed(
            [FileFailure(f.destination, f.source, f.error or "failed") for f in result.failures],
            result,
        )
    return result
