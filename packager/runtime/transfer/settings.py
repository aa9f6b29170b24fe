"""Tunables of the transfer engine, with defaults chosen for 2 to 64 cores.

Over a real network a worker spends most of its time waiting on a socket, so the most streams
scales with cores but never drops below 8 (a single TCP stream rarely fills a fast link) nor
exceeds 64 (hubs and CDNs throttle clients opening more connections). How many of them run is
decided while the transfer runs (governor.py): a fast, near source makes the CPU the limit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from packager import constants

from .governor import initial_streams

MiB = 1024 * 1024
# Bytes per ranged request. 16 MiB keeps per-request overhead (one round trip, one redirect at
# most) under 1% on a 10 Gbit link while a 2 GiB file still splits into 128 ranges.
DEFAULT_CHUNK = 16 * MiB


def default_workers(cpu_count: int | None = None) -> int:
    cores = cpu_count or os.cpu_count() or 2
    return max(8, min(64, 4 * cores))


@dataclass(frozen=True)
class TransferSettings:
    workers: int = 0  # 0 = default_workers(); the most streams (connections) at once
    # Streams running at the start. 0 = adaptive (governor.py): start at the cores, grow toward
    # `workers` while the streams wait on the network. An explicit worker count means exactly
    # that many streams throughout.
    streams: int = 0
    # Files whose ranges are handed out side by side (0 = as many as workers). A file's digest
    # is sequential, so it hashes on one core at a time: crowding every worker onto one file
    # leaves the other cores nothing to hash, makes all but one worker write ahead of the hash
    # frontier (bytes read back later to hash) and serialises their writes on the file's inode
    # lock. Measured on 8 x 256 MiB, 2 cores, 8 workers, sha256: 593 MiB/s median with one file
    # at a time, 654 with two, 721 with eight.
    files_in_flight: int = 0
    # Nice increment of the worker threads until Priority.boost() (engine.py): the in-image
    # prefetch runs in the background while the model imports. 0 = normal priority throughout.
    worker_nice: int = 0
    chunk_size: int = 0  # 0 = $PACK_TRANSFER_CHUNK_BYTES, else DEFAULT_CHUNK
    # Bytes moved per socket read / pwrite; memory in flight is about workers * buffer_size.
    # 0 = 1 MiB, or 4 MiB with direct I/O (each direct write waits for the device: fewer,
    # larger ones keep it busy).
    buffer_size: int = 0
    # Memory for buffers written ahead of their file's hash frontier, kept to hash from memory
    # instead of reading the bytes back (ordered_hash.py, buffers.py). 0 = always read back.
    hash_window_bytes: int = 64 * MiB
    # Write with O_DIRECT, past the page cache (direct_io.py): for pre-warming a node with more
    # weights than free memory. None = $PACK_TRANSFER_DIRECT_IO, else off.
    direct_io: bool | None = None
    connect_timeout: float = 10.0
    # No byte for this long on an open request = stalled connection: drop it and retry the range.
    stall_timeout: float = 30.0
    # A request slower than this overall rate is abandoned too (slow-loris servers never stall).
    min_bytes_per_second: int = 64 * 1024
    attempts_per_range: int = 6  # transient failures (5xx, resets, truncation, stalls)
    attempts_per_file: int = 3  # whole-file restarts after a digest or size mismatch
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_redirects: int = 10
    cache_max_bytes: int | None = None  # None = no eviction
    # fdatasync before the rename: survives power loss, costs a full flush of every file. Off by
    # default: the failure containers actually see is a killed process, which the page cache
    # survives; the digest check catches the rest on the next run.
    durable: bool = False
    # Pure-Python CRC32C runs at a few MB/s; above this size a crc32c entry is checked by size
    # only (reported as "size-only") unless google_crc32c is importable.
    pure_crc32c_limit: int = 64 * MiB

    def resolved(self, env: Mapping[str, str], workers: int | None = None) -> TransferSettings:
        """Fill defaults from explicit arguments first, then the environment."""
        chosen = workers or self.workers or _int(env.get(constants.PACK_TRANSFER_WORKERS))
        in_flight = self.files_in_flight or _int(env.get(constants.PACK_TRANSFER_FILES_IN_FLIGHT))
        chunk = self.chunk_size or _int(env.get(constants.PACK_TRANSFER_CHUNK_BYTES)) or DEFAULT_CHUNK
        cap = self.cache_max_bytes
        if cap is None:
            cap = _int(env.get(constants.PACK_CACHE_MAX_BYTES))
        direct = self.direct_io
        if direct is None:
            direct = _flag(env.get(constants.PACK_TRANSFER_DIRECT_IO))
        workers = max(1, chosen or default_workers())
        # A direct-I/O stream sleeps in every write while the device takes it: twice as many
        # keep the cores busy (2 cores, 2 GiB, sha256: 1,000-1,270 MiB/s with 4 streams against
        # 900-1,030 with 2).
        start = initial_streams(workers) * (2 if direct else 1)
        streams = self.streams or (workers if chosen else start)
        buffer = self.buffer_size or (4 * MiB if direct else 1 * MiB)
        return replace(
            self,
            workers=workers,
            streams=max(1, min(workers, streams)),
            files_in_flight=max(1, in_flight or workers),
            chunk_size=max(64 * 1024, chunk),
            buffer_size=max(4096, min(buffer, chunk)),
            cache_max_bytes=cap,
            direct_io=direct,
        )


def _flag(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes", "on")


def _int(text: str | None) -> int | None:
    if not text or not text.strip():
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None
