"""Direct I/O downloads (direct_io.py) and buffers kept for the hash frontier (buffers.py), on
real files: the page cache is inspected with fincore, the hash is checked against hashlib."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from packager.runtime.transfer import fetch
from packager.runtime.transfer.buffers import BufferPool
from packager.runtime.transfer.direct_io import open_direct
from packager.runtime.transfer.ordered_hash import OrderedHasher

from .conftest import FAST, KiB, MiB, child_env, payload, transfer_cmd

DIRECT = dataclasses.replace(FAST, direct_io=True, buffer_size=256 * KiB)
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes(path) -> int:
    """Bytes of the file in the page cache (util-linux fincore: mincore(2) on a mapping)."""
    if not shutil.which("fincore"):
        pytest.skip("fincore (util-linux) is not installed")
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return int(out.strip())


@pytest.fixture
def direct_ok(tmp_path):
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    fd = open_direct(str(probe))
    if fd < 0:
        pytest.skip(f"the filesystem of {tmp_path} refuses O_DIRECT")
    os.close(fd)
    probe.unlink()


def test_direct_io_delivers_verified_files_past_the_page_cache(hub, tmp_path, direct_ok):
    # Sizes off the 4 KiB block grid, a file under one block, one just over, and an empty one.
    hub.add("big.bin", payload(3 * MiB + 123, 1))
    hub.add("tiny.txt", payload(100, 2))
    hub.add("block-and-a-bit.bin", payload(5000, 3), "md5")
    hub.add("empty.txt", b"")
    result = fetch(hub.manifest(), str(tmp_path / "direct"), settings=DIRECT, env=hub.env)
    # Only the last, partial block went through the page cache (hashing read nothing back
    # through it either); the same download without direct I/O leaves the whole file there.
    assert resident_bytes(tmp_path / "direct" / "m" / "big.bin") <= PAGE
    hub.assert_placed(str(tmp_path / "direct"))  # (this read fills the page cache)
    assert result.ok and {f.verification for f in result.files} == {"sha256", "md5"}
    assert hub.bytes_for("big.bin") == 3 * MiB + 123  # every byte fetched once
    fetch(hub.manifest(), str(tmp_path / "buffered"), settings=FAST, env=hub.env)
    assert resident_bytes(tmp_path / "buffered" / "m" / "big.bin") >= 3 * MiB


def test_direct_io_truncated_responses_resume_within_a_block(hub, tmp_path, direct_ok):
    size = 2 * MiB + 777
    hub.add("a.bin", payload(size))
    hub.server.faults.truncate = 4
    result = fetch(hub.manifest(), str(tmp_path), settings=DIRECT, env=hub.env)
    hub.assert_placed(str(tmp_path))
    assert result.files[0].retries >= 4
    # A retry continues from the last whole block written: at most a block per cut is re-fetched.
    assert size <= hub.bytes_for("a.bin") <= size + 4 * 4096


def test_direct_io_corruption_is_caught_and_refetched(hub, tmp_path, direct_ok):
    hub.add("a.bin", payload(1 * MiB + 5))
    hub.server.faults.corrupt = 1
    result = fetch(hub.manifest(), str(tmp_path), settings=DIRECT, env=hub.env)
    hub.assert_placed(str(tmp_path))
    assert result.files[0].retries >= 1


def test_direct_io_kill_9_then_resume(hub, tmp_path, direct_ok):
    chunk, workers, total = 256 * KiB, 4, 4 * MiB + 4321
    hub.add("shard.bin", payload(total, 7))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(hub.manifest().to_json())
    dest = tmp_path / "dest"
    hub.server.faults.rate = 1 * MiB
    proc = subprocess.Popen(
        transfer_cmd(str(manifest), str(dest), "--workers", str(workers), "--chunk-size",
                     str(chunk), "--direct-io"),
        env=child_env(hub), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while hub.server.counters.bytes_served < 0.4 * total:
            assert time.monotonic() < deadline, "the first run never got going"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    served_first = hub.server.counters.bytes_served
    assert served_first < total and not (dest / "m" / "shard.bin").exists()
    hub.server.reset()
    result = fetch(hub.manifest(), str(dest), settings=DIRECT, workers=workers, env=hub.env)
    hub.assert_placed(str(dest))
    assert hub.server.counters.bytes_served < (total - served_first) + workers * chunk
    assert result.files[0].resumed_bytes > 0


def test_a_filesystem_without_direct_io_falls_back_to_the_page_cache(hub, ramfs):
    probe = ramfs / "probe"
    probe.write_bytes(b"")
    assert open_direct(str(probe)) == -1  # refused at open, not at the first write
    hub.add("a.bin", payload(1 * MiB + 9, 4))
    result = fetch(hub.manifest(), str(ramfs / "dest"), settings=DIRECT, env=hub.env)
    hub.assert_placed(str(ramfs / "dest"))
    assert result.ok and result.files[0].verification == "sha256"
    # ramfs reports no size at all (0 blocks): the room check (space.py) has nothing to check
    # against there and lets the download go ahead rather than call it full.
    assert os.statvfs(ramfs).f_blocks == 0


# --- buffers kept for the hash frontier ------------------------------------------------------

def _two_writers(tmp_path, pool: BufferPool, wait: float, direct: bool):
    """Writer B fills [1 MiB, 2 MiB) in 256 KiB buffers while writer A, holding the frontier
    range [0, 1 MiB), is held back until B has written everything it can."""
    data = payload(2 * MiB, 9)
    path = tmp_path / "f.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, len(data))
    dfd = open_direct(str(path)) if direct else -1
    hasher = OrderedHasher(hashlib.sha256(), fd, len(data), pool=pool, direct_fd=dfd,
                           wait_for_room=wait)
    step = 256 * KiB
    b_done = threading.Event()

    def write(start: int, end: int) -> None:
        buf = pool.take()
        for offset in range(start, end, step):
            buf[:step] = data[offset:offset + step]
            os.pwrite(dfd if dfd >= 0 else fd, buf[:step], offset)
            buf = hasher.wrote(start, offset, buf[:step], buf)

    b = threading.Thread(target=lambda: (write(MiB, 2 * MiB), b_done.set()))
    b.start()
    b_done.wait(0.3)  # with backpressure B is still waiting for room here
    a_saw_b_done = b_done.is_set()
    write(0, MiB)
    b.join()
    digest = hasher.finish()
    for fd_ in (fd, dfd):
        if fd_ >= 0:
            os.close(fd_)
    assert digest == hashlib.sha256(data).hexdigest()
    return hasher, a_saw_b_done


def test_buffers_ahead_of_the_frontier_are_hashed_from_memory(tmp_path):
    pool = BufferPool(256 * KiB, held_limit=8)  # room for all of B's four buffers
    hasher, _ = _two_writers(tmp_path, pool, wait=0.0, direct=False)
    assert hasher.reread_bytes == 0 and pool.peak_held == 4


def test_without_room_bytes_are_read_back_from_the_file(tmp_path):
    pool = BufferPool(256 * KiB, held_limit=1)
    hasher, b_finished_first = _two_writers(tmp_path, pool, wait=0.0, direct=False)
    assert b_finished_first  # nobody waited
    assert hasher.reread_bytes == 3 * 256 * KiB  # one buffer kept, three read back


def test_a_direct_io_writer_waits_for_room_instead_of_a_disk_read_back(tmp_path, direct_ok):
    pool = BufferPool(256 * KiB, held_limit=1)
    hasher, b_finished_first = _two_writers(tmp_path, pool, wait=5.0, direct=True)
    assert not b_finished_first  # B waited for the frontier to free its kept buffer
    assert hasher.reread_bytes == 0 and pool.peak_held == 1


def test_a_direct_io_writer_stops_waiting_at_its_deadline(tmp_path, direct_ok):
    pool = BufferPool(256 * KiB, held_limit=1)
    hasher, b_finished_first = _two_writers(tmp_path, pool, wait=0.05, direct=True)
    assert b_finished_first  # gave up waiting: its bytes were read back with O_DIRECT
    assert hasher.reread_bytes == 3 * 256 * KiB  # one buffer kept, three read back
