"""Room for the download is checked before the first request (space.py), on real filesystems:
a small tmpfs mounted for the test stands in for a nearly full volume."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest
from click.testing import CliRunner

from packager.cli.fetch_cmd import fetch_command
from packager.errors import TransferError
from packager.runtime.manifest import Manifest
from packager.runtime.transfer import InsufficientSpace, TransferFailed, fetch
from packager.runtime.transfer.api import plan_targets
from packager.runtime.transfer.cache import cache_key
from packager.runtime.transfer.job import group_jobs
from packager.runtime.transfer.layout import partial_path
from packager.runtime.transfer.space import needs
from packager.plan.lock_file import LOCK_FILENAME, Lock, lock_text

from .conftest import FAST, MiB, child_env, payload, transfer_cmd


def test_a_manifest_larger_than_the_volume_fails_before_any_request(hub, small_fs):
    hub.add("a.bin", payload(3 * MiB, 1))
    hub.add("b.bin", payload(2 * MiB, 2))
    with pytest.raises(InsufficientSpace) as info:
        fetch(hub.manifest(), str(small_fs / "dest"), settings=FAST, env=hub.env)
    assert hub.server.counters.requests == 0
    message = str(info.value)
    assert f"not enough space on the filesystem of {small_fs}" in message
    assert "5.0 MiB to write for 2 files" in message and "Nothing was downloaded" in message
    assert not os.path.exists(small_fs / "dest")  # nothing half-written left behind


def test_what_fits_is_fetched(hub, small_fs):
    hub.add("a.bin", payload(3 * MiB, 1))
    result = fetch(hub.manifest(), str(small_fs / "dest"), settings=FAST, env=hub.env)
    assert result.ok
    hub.assert_placed(str(small_fs / "dest"))


def test_a_resumed_partial_needs_only_what_it_has_not_allocated(hub, tmp_path):
    entry = hub.add("a.bin", payload(3 * MiB, 1))
    jobs = group_jobs(plan_targets(hub.manifest(), str(tmp_path)))
    work = partial_path(jobs[0].targets[0].final)
    os.makedirs(os.path.dirname(work))
    with open(work, "wb") as fh:
        fh.truncate(entry.size)  # sparse, as the engine makes it
        fh.write(payload(1 * MiB))  # one range written before the kill
    (need,) = needs(jobs, None).values()
    assert need.nbytes == 2 * MiB and need.files == [jobs[0].targets[0].final]


def test_unused_cache_blobs_are_evicted_to_make_room(hub, tmp_path, small_fs):
    cache = small_fs / "cache"
    old = hub.add("old.bin", payload(3 * MiB, 1))
    fetch(hub.manifest(), str(tmp_path / "one"), cache_dir=str(cache), settings=FAST, env=hub.env)
    assert (cache / "blobs" / cache_key(old)).exists()
    hub.entries.clear()
    hub.data.clear()
    new = hub.add("new.bin", payload(2 * MiB, 2))
    result = fetch(hub.manifest(), str(tmp_path / "two"), cache_dir=str(cache), settings=FAST,
                   env=hub.env)
    assert result.ok
    hub.assert_placed(str(tmp_path / "two"))
    assert not (cache / "blobs" / cache_key(old)).exists()  # the LRU blob made room
    assert (cache / "blobs" / cache_key(new)).exists()
    # A blob this manifest uses is never evicted for room: the fetch fails instead.
    hub.add("more.bin", payload(3 * MiB, 3))
    with pytest.raises(InsufficientSpace):
        fetch(hub.manifest(), str(tmp_path / "three"), cache_dir=str(cache), settings=FAST,
              env=hub.env)
    assert (cache / "blobs" / cache_key(new)).exists()


def test_the_in_image_command_reports_the_shortfall(hub, tmp_path, small_fs):
    hub.add("a.bin", payload(5 * MiB, 1))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(Manifest(tuple(hub.entries)).to_json())
    done = subprocess.run(transfer_cmd(str(manifest), str(small_fs / "dest")),
                          env=child_env(hub), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "not enough space on the filesystem of" in done.stderr
    assert "Traceback" not in done.stderr


def test_pack_fetch_names_the_shortfall_and_the_fix(hub, tmp_path, small_fs, monkeypatch):
    hub.add("a.bin", payload(5 * MiB, 1))
    monkeypatch.setenv("HF_ENDPOINT", hub.server.base_url)
    truss = tmp_path / "truss"
    truss.mkdir()
    (truss / LOCK_FILENAME).write_text(lock_text(Lock(inputs_digest="test", manifest=hub.manifest())))
    failed = CliRunner().invoke(fetch_command, [str(truss), "--dest", str(small_fs / "d")])
    assert isinstance(failed.exception, TransferError)
    assert "5.0 MiB to write for 1 file" in str(failed.exception)
    assert "larger volume" in failed.exception.hint
    assert hub.server.counters.requests == 0


def test_space_taken_during_the_download_fails_the_file_clearly(hub, small_fs):
    """Room was there at the start; another writer fills the volume mid-transfer."""
    hub.add("a.bin", payload(3 * MiB, 1))
    hub.server.faults.rate = 512 * 1024  # per response, 4 streams: about 1.5 s in all

    def fill():
        time.sleep(0.2)
        with open(small_fs / "filler", "wb") as fh:
            try:
                fh.write(b"\0" * (4 * MiB))
            except OSError:
                pass  # the volume is full: what we wanted

    filler = threading.Thread(target=fill)
    filler.start()
    with pytest.raises(TransferFailed) as info:
        fetch(hub.manifest(), str(small_fs / "dest"), settings=FAST, env=hub.env)
    filler.join()
    assert "No space left on device while writing" in str(info.value)
    assert "Traceback" not in str(info.value)
