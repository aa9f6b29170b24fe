"""Concurrent loading for models that read several large files (cold-start guide §3.5).

    from packager.runtime.loading import load_concurrently

    def load(self):
        self._lazy_data_resolver.block_until_download_complete()
        shards = load_concurrently(sorted(glob("/app/model_cache/llm/*.safetensors")),
                                   safetensors.torch.load_file)

Threads, not processes: file reads, safetensors/torch loaders, decompression and hashing release
the GIL, so N files load in about the time of the largest instead of the sum. If loading N files
takes N times as long as one, the loader holds the GIL (pure-Python parsing): use a loader that
does not, or fewer, larger files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers(count: int) -> int:
    # I/O-bound work: more threads than cores helps until the disk or network saturates.
    return max(1, min(count, 4 * (os.cpu_count() or 2), 32))


def load_concurrently(items: Iterable[T], fn: Callable[[T], R], workers: int | None = None) -> list[R]:
    """fn(item) for every item on a thread pool; results in input order.

    The first exception is re-raised (with its item named) as soon as it happens; items not
    yet started are cancelled, so a missing file fails the load quickly.
    """
    items = list(items)
    if not items:
        return []
    pool = ThreadPoolExecutor(workers or default_workers(len(items)), thread_name_prefix="pack-load")
    try:
        futures = [pool.submit(fn, item) for item in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        for item, future in zip(items, futures):
            if future.done() and future.exception() is not None:
                for other in futures:
                    other.cancel()
                raise RuntimeError(f"loading {item!r} failed: {future.exception()}") from future.exception()
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True)
