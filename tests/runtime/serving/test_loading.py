"""load_concurrently: files load in parallel threads, results keep their order, failures name
the item and stop the rest."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from packager.runtime.loading import load_concurrently


def test_results_keep_input_order_and_run_concurrently():
    active, peak, lock = [0], [0], threading.Lock()

    def load(n: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)  # sleeping releases the GIL, like file reads and native loaders
        with lock:
            active[0] -= 1
        return n * n

    started = time.monotonic()
    assert load_concurrently(range(6), load, workers=6) == [0, 1, 4, 9, 16, 25]
    assert time.monotonic() - started < 0.6
    assert peak[0] == 6


def test_real_files_are_read_and_hashed_in_parallel(tmp_path):
    paths = []
    for i in range(4):
        path = tmp_path / f"shard-{i}.bin"
        path.write_bytes(bytes([i]) * 1_000_000)
        paths.append(path)
    digests = load_concurrently(paths, lambda p: hashlib.sha256(p.read_bytes()).hexdigest())
    assert digests == [hashlib.sha256(bytes([i]) * 1_000_000).hexdigest() for i in range(4)]


def test_the_first_failure_is_raised_with_its_item_and_pending_items_are_cancelled():
    started = []

    def load(name: str) -> str:
        started.append(name)
        if name == "missing.safetensors":
            raise FileNotFoundError(name)
        time.sleep(0.3)
        return name

    items = ["missing.safetensors"] + [f"ok-{i}" for i in range(20)]
    with pytest.raises(RuntimeError, match="loading 'missing.safetensors' failed") as info:
        load_concurrently(items, load, workers=2)
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert len(started) < len(items)


def test_empty_input():
    assert load_concurrently([], lambda x: x) == []
