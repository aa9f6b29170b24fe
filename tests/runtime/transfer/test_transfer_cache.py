"""The content-addressed cache: hits without network, hard links, copies, LRU eviction."""

from __future__ import annotations

import os

import pytest

from packager.runtime.manifest import Manifest
from packager.runtime.transfer import fetch
from packager.runtime.transfer.cache import cache_key

from .conftest import FAST, REPO_ROOT, KiB, MiB, payload


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


def test_cache_on_another_filesystem_without_pins_is_copied(hub, tmp_path):
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


# --- a node cache on another filesystem (volume mode): symlinks, pins, eviction -------------------
@pytest.fixture
def shm_cache(tmp_path):
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second filesystem")
    import tempfile

    with tempfile.TemporaryDirectory(dir=shm) as cache:
        yield cache


def _pinned_instance(cache: str) -> str:
    from packager.runtime.cache_pins import hold_instance

    return hold_instance(cache)


def test_across_filesystems_a_pinned_fetch_symlinks_the_verified_blob(hub, tmp_path, shm_cache):
    entry = hub.add("a.bin", payload(600 * KiB))
    instance = _pinned_instance(shm_cache)
    blob = os.path.join(shm_cache, "blobs", cache_key(entry))
    cold = fetch(hub.manifest(), str(tmp_path / "one"), cache_dir=shm_cache,
                 cache_instance=instance, settings=FAST, env=hub.env)
    assert cold.bytes_downloaded == 600 * KiB
    first = tmp_path / "one" / "m" / "a.bin"
    # Written once: the download went to the cache, the destination is a link to that blob.
    assert os.path.islink(first) and os.readlink(first) == blob
    hub.assert_placed(str(tmp_path / "one"))
    assert os.path.exists(os.path.join(shm_cache, "pins", instance, cache_key(entry)))
    requests = hub.server.counters.requests
    warm = fetch(hub.manifest(), str(tmp_path / "two"), cache_dir=shm_cache,
                 cache_instance=instance, settings=FAST, env=hub.env)
    assert warm.cache_hits == 1 and warm.bytes_downloaded == 0
    assert hub.server.counters.requests == requests
    second = tmp_path / "two" / "m" / "a.bin"
    assert os.path.islink(second) and os.readlink(second) == blob  # no copy on a warm start
    hub.assert_placed(str(tmp_path / "two"))
    # Markers hold through the link: a third run finds the file present, nothing re-read.
    again = fetch(hub.manifest(), str(tmp_path / "two"), cache_dir=shm_cache,
                  cache_instance=instance, settings=FAST, env=hub.env)
    assert [f.status for f in again.files] == ["present"]
    # Nothing partial or hidden is visible at the destination.
    assert sorted(os.listdir(tmp_path / "two" / "m")) == [".a.bin.pack-ok", "a.bin"]


def test_eviction_never_removes_a_blob_a_live_instance_links_to(hub, tmp_path, shm_cache):
    settings = FAST.__class__(**{**FAST.__dict__, "cache_max_bytes": 250 * KiB})
    entries = [hub.add(f"{n}.bin", payload(100 * KiB, i)) for i, n in enumerate("abc")]
    instance = _pinned_instance(shm_cache)
    for i, entry in enumerate(entries):
        fetch(Manifest((entry,)), str(tmp_path / f"d{i}"), cache_dir=shm_cache,
              cache_instance=instance, settings=settings, env=hub.env)
    blobs = set(os.listdir(os.path.join(shm_cache, "blobs")))
    assert {cache_key(e) for e in entries} <= blobs  # over the cap, but every blob is linked
    for i, entry in enumerate(entries):
        assert (tmp_path / f"d{i}" / "m" / f"{'abc'[i]}.bin").read_bytes() == hub.data[entry.destination]


def test_pins_of_a_dead_instance_are_swept_and_its_blobs_evictable(hub, tmp_path, shm_cache):
    import subprocess
    import sys

    settings = FAST.__class__(**{**FAST.__dict__, "cache_max_bytes": 150 * KiB})
    a, b = hub.add("a.bin", payload(100 * KiB, 1)), hub.add("b.bin", payload(100 * KiB, 2))
    # Another process (a server that has since exited) pinned `a`.
    code = ("import sys; from packager.runtime.cache_pins import hold_instance; "
            "print(hold_instance(sys.argv[1]))")
    dead = subprocess.run([sys.executable, "-c", code, shm_cache], check=True, text=True,
                          capture_output=True, cwd=REPO_ROOT).stdout.strip()
    fetch(Manifest((a,)), str(tmp_path / "d0"), cache_dir=shm_cache, cache_instance=dead,
          settings=settings, env=hub.env)
    assert os.path.islink(tmp_path / "d0" / "m" / "a.bin")
    fetch(Manifest((b,)), str(tmp_path / "d1"), cache_dir=shm_cache, settings=settings, env=hub.env)
    assert not os.path.exists(os.path.join(shm_cache, "pins", dead))  # swept
    assert cache_key(a) not in os.listdir(os.path.join(shm_cache, "blobs"))  # LRU, unpinned: gone
    # The dangling link is never trusted: the next fetch there downloads `a` again, verified.
    result = fetch(Manifest((a,)), str(tmp_path / "d0"), cache_dir=shm_cache,
                   cache_instance=_pinned_instance(shm_cache), settings=settings, env=hub.env)
    assert [f.status for f in result.files] == ["downloaded"]
    assert (tmp_path / "d0" / "m" / "a.bin").read_bytes() == hub.data[a.destination]


def test_a_restarted_server_repins_the_links_it_finds(hub, tmp_path, shm_cache):
    entry = hub.add("a.bin", payload(100 * KiB))
    instance = _pinned_instance(shm_cache)
    fetch(hub.manifest(), str(tmp_path / "d"), cache_dir=shm_cache, cache_instance=instance,
          settings=FAST, env=hub.env)
    os.unlink(os.path.join(shm_cache, "pins", instance, cache_key(entry)))  # as if a new instance
    result = fetch(hub.manifest(), str(tmp_path / "d"), cache_dir=shm_cache,
                   cache_instance=instance, settings=FAST, env=hub.env)
    assert [f.status for f in result.files] == ["present"]
    assert os.path.exists(os.path.join(shm_cache, "pins", instance, cache_key(entry)))


def test_without_a_pin_holder_a_cache_on_another_filesystem_is_copied(hub, tmp_path, shm_cache):
    hub.add("a.bin", payload(300 * KiB))
    fetch(hub.manifest(), str(tmp_path / "one"), cache_dir=shm_cache, settings=FAST, env=hub.env)
    placed = tmp_path / "one" / "m" / "a.bin"
    assert not os.path.islink(placed) and os.stat(placed).st_dev == os.stat(tmp_path).st_dev
