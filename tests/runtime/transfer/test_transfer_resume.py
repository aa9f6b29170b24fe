"""Crash safety and multi-process sharing, with the engine running in real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from packager.runtime.transfer import fetch

from .conftest import FAST, KiB, MiB, child_env, payload, transfer_cmd

CHUNK = 256 * KiB
WORKERS = 4


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_kill_9_midway_then_resume_fetches_only_the_rest(hub, tmp_path):
    hub.add("shard-1.bin", payload(4 * MiB, 1))
    hub.add("shard-2.bin", payload(2 * MiB, 2))
    total = 6 * MiB
    manifest = tmp_path / "manifest.json"
    manifest.write_text(hub.manifest().to_json())
    dest = tmp_path / "dest"
    hub.server.faults.rate = 1 * MiB  # per response: about 4 MiB/s with 4 workers
    proc = subprocess.Popen(
        transfer_cmd(str(manifest), str(dest), "--workers", str(WORKERS), "--chunk-size", str(CHUNK)),
        env=child_env(hub), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: hub.server.counters.bytes_served >= 0.4 * total)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    served_first = hub.server.counters.bytes_served
    assert served_first < total, "the first run finished before it was killed"
    partials = [n for n in os.listdir(dest / "m") if n.endswith(".pack-partial")]
    assert partials and not (dest / "m" / "shard-1.bin").exists()  # nothing half-done visible

    hub.server.reset()
    result = fetch(hub.manifest(), str(dest), settings=FAST, workers=WORKERS, env=hub.env)
    served_second = hub.server.counters.bytes_served
    hub.assert_placed(str(dest))
    assert served_second < (total - served_first) + WORKERS * CHUNK
    assert sum(f.resumed_bytes for f in result.files) > 0
    # what the killed run wrote is only on disk: the hash reads it back from the file
    assert all(f.hashed_from_disk >= f.resumed_bytes for f in result.files)
    assert not [n for n in os.listdir(dest / "m") if "partial" in n]


def test_torn_journal_and_foreign_journal_are_handled(hub, tmp_path):
    entry = hub.add("a.bin", payload(1 * MiB))
    part = tmp_path / "m" / ".a.bin.pack-partial"
    part.parent.mkdir(parents=True)
    # A journal claiming completed ranges of a different file must not be believed.
    part.write_bytes(b"\0" * entry.size)
    (tmp_path / "m" / ".a.bin.pack-partial.journal").write_text(
        json.dumps({"v": 1, "size": entry.size, "algorithm": "sha256", "digest": "0" * 64,
                    "source": "x"}) + "\n0 1048576\n")
    result = fetch(hub.manifest(), str(tmp_path), settings=FAST, env=hub.env)
    hub.assert_placed(str(tmp_path))
    assert result.files[0].resumed_bytes == 0


def test_two_processes_share_the_cache_and_download_each_blob_once(hub, tmp_path):
    names = [f"f{i}.bin" for i in range(3)]
    for i, name in enumerate(names):
        hub.add(name, payload(1 * MiB, i))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(hub.manifest().to_json())
    cache = tmp_path / "cache"
    hub.server.faults.rate = 4 * MiB  # slow enough that the two runs overlap
    procs = [
        subprocess.Popen(
            transfer_cmd(str(manifest), str(tmp_path / f"dest{i}"), "--cache", str(cache),
                         "--workers", "4", "--chunk-size", str(CHUNK),
                         "--stats", str(tmp_path / f"stats{i}.json")),
            env=child_env(hub), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    for name in names:
        assert hub.bytes_for(name) == 1 * MiB, name  # fetched exactly once in total
    for i in range(2):
        hub.assert_placed(str(tmp_path / f"dest{i}"))
    stats = [json.loads((tmp_path / f"stats{i}.json").read_text()) for i in range(2)]
    assert sum(s["cache_hits"] for s in stats) == len(names)
    assert sum(s["bytes_downloaded"] for s in stats) == 3 * MiB
