"""The content-addressed cache: hits without network, hard links, copies, LRU eviction."""

from __future__ import annotations

import os

import pytest

from packager.runtime.manifest import Manifest
from packager.runtime.transfer import fetch
from packager.runtime.transfer.cache import cache_key

from .conftest import FAST, KiB, MiB, payload


def test_second_fetch_is_a_cache_hit_with_zero_requests(hub, tmp_path):
    entry = hub.add("a.bin", payload(1 * MiB))
    hub.add("b.bin", payload(10 * KiB, 2), "none")
    cache = tmp_path / "cache"
    first = fetch(hub.manifest(), str(tmp_path / "one"), cache_dir=str(cache), settings=FAST,
                  env=hub.env)
    assert first.cache_hits == 0
    requests = hub.server.counters.requests
    second = fetch(hub.manifest(), str(tmp_path / "two"), cache_dir=str(cache), settings=FAST,
                   env=hub.env)
    assert hub.server.counters.requests == requests
    assert second.cache_hits == 2 and second.bytes_downloaded == 0
    hub.assert_placed(str(tmp_path / "two"))
    blob = cache / "blobs" / cache_key(entry)
    assert os.stat(blob).st_ino == os.stat(tmp_path / "two" / "m" / "a.bin").st_ino
    assert not os.listdir(cache / "partial")


def test_cache_on_another_filesystem_is_copied(hub, tmp_path):
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second filesystem")
    import tempfile

    with tempfile.TemporaryDirectory(dir=shm) as cache:
        hub.add("a.bin", payload(300 * KiB))
        fetch(hub.manifest(), str(tmp_path / "one"), cache_dir=cache, settings=FAST, env=hub.env)
        result = fetch(hub.manifest(), str(tmp_path / "two"), cache_dir=cache, settings=FAST,
                       env=hub.env)
        assert result.cache_hits == 1
        hub.assert_placed(str(tmp_path / "two"))


def test_lru_eviction_keeps_the_cache_under_its_cap(hub, tmp_path):
    cache = tmp_path / "cache"
    settings = FAST.__class__(**{**FAST.__dict__, "cache_max_bytes": 250 * KiB})
    entries = [hub.add(f"{n}.bin", payload(100 * KiB, i)) for i, n in enumerate("abc")]
    for i, entry in enumerate(entries):
        fetch(Manifest((entry,)), str(tmp_path / f"d{i}"), cache_dir=str(cache),
              settings=settings, env=hub.env)
    blobs = set(os.listdir(cache / "blobs"))
    assert cache_key(entries[0]) not in blobs  # least recently used went first
    assert {cache_key(entries[1]), cache_key(entries[2])} <= blobs
    # Evicted blobs only leave the cache: the destination that linked it keeps its data.
    assert (tmp_path / "d0" / "m" / "a.bin").read_bytes() == hub.data[entries[0].destination]
