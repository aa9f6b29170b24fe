"""Small pieces of the transfer engine: digests, journal, hashing order, credentials, paths,
the GCS URL path, and the two command-line entry points."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from packager.errors import PackError, TransferError
from packager.runtime.manifest import Digest, Entry, Manifest, Revision, Source
from packager.runtime.transfer import LogReporter, digests, fetch
from packager.runtime.transfer.credentials import hf_token, read_secret, s3_credentials
from packager.runtime.transfer.digests import PureCrc32c, new_hasher
from packager.runtime.transfer.job import split
from packager.runtime.transfer.journal import Interval, Journal, missing
from packager.runtime.transfer.layout import UnsafeDestination, map_destination
from packager.runtime.transfer.ordered_hash import OrderedHasher
from packager.runtime.transfer.engine import Scheduler
from packager.runtime.transfer.settings import TransferSettings, default_workers
from packager.plan.lock_file import LOCK_FILENAME, Lock, lock_text

from .conftest import (
    FAST,
    KiB,
    MiB,
    child_env,
    digest_of,
    hf_entry,
    payload,
    transfer_cmd,
)


def test_crc32c_and_git_sha1_known_values(monkeypatch):
    h = PureCrc32c()
    h.update(b"123456789")
    assert h.hexdigest() == "e3069283"  # the CRC-32C check value
    native = new_hasher("crc32c", 9, 0)
    native.update(b"123456789")
    assert native.hexdigest() == "e3069283"  # google_crc32c when installed, else pure Python
    git = new_hasher("git-sha1", 6, 0)
    git.update(b"hello\n")
    assert git.hexdigest() == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object
    monkeypatch.setattr(digests, "native_crc32c_available", lambda: False)
    assert new_hasher("crc32c", 10 * 1024 * 1024, 1024) is None  # too big for pure Python
    assert new_hasher("none", 1, 0) is None


def test_ordered_hasher_out_of_order_ranges(tmp_path):
    data = payload(100 * KiB)
    path = tmp_path / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    os.ftruncate(fd, len(data))
    h = OrderedHasher(hashlib.sha256(), fd, len(data))
    chunks = [(s, min(s + 10 * KiB, len(data))) for s in range(0, len(data), 10 * KiB)]
    for start, end in reversed(chunks):  # worst case: every range arrives early
        os.pwrite(fd, data[start:end], start)
        h.wrote(start, start, memoryview(data[start:end]))
    assert h.finish() == hashlib.sha256(data).hexdigest()
    os.close(fd)


def test_ordered_hasher_catch_up_yields_to_a_kick_from_another_thread(tmp_path):
    """A retired (niced) thread stops hashing between re-read chunks and queues a kick; the kick
    carries on from the frontier, and finish() never yields."""
    data = payload(6 * MiB)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    os.ftruncate(fd, len(data))
    retired = {"now": False}
    kicks: list[str] = []
    h = OrderedHasher(hashlib.sha256(), fd, len(data), should_yield=lambda: retired["now"],
                      on_yield=lambda: kicks.append("queued"))
    os.pwrite(fd, data[MiB:], MiB)  # everything but the first MiB arrives early
    h.wrote(MiB, MiB, memoryview(data[MiB:]))
    retired["now"] = True  # boost: the thread landing at the frontier is a retired one
    os.pwrite(fd, data[:MiB], 0)
    h.wrote(0, 0, memoryview(data[:MiB]))  # hashes its own MiB, then yields before re-reading
    assert kicks == ["queued"] and h.reread_bytes == 0
    retired["now"] = False  # the kick runs in a normal-priority worker
    h.kick()
    assert h.reread_bytes == len(data) - MiB
    assert h.finish() == hashlib.sha256(data).hexdigest()
    os.close(fd)


def test_journal_ignores_torn_line_and_foreign_header(tmp_path):
    j = Journal(str(tmp_path / "j"), {"size": 100, "digest": "d"})
    j.open(fresh=True)
    j.record(0, 10)
    j.record(50, 60)
    j.close()
    with open(tmp_path / "j", "a") as fh:
        fh.write("60 7")  # killed mid-write
    assert j.load() == [Interval(0, 10), Interval(50, 60)]
    assert missing(100, j.load()) == [Interval(10, 50), Interval(60, 100)]
    assert Journal(str(tmp_path / "j"), {"size": 100, "digest": "other"}).load() == []


def test_split_ramps_the_first_ranges_of_a_large_interval_and_covers_it_exactly():
    big = split([Interval(0, 64 * KiB * 1024)], 1024 * KiB, 4)
    assert [e - s for s, e in big[:5]] == [256 * KiB, 512 * KiB, 768 * KiB, 1024 * KiB, 1024 * KiB]
    assert big[0][0] == 0 and big[-1][1] == 64 * 1024 * KiB
    assert all(a[1] == b[0] for a, b in itertools.pairwise(big))  # no gap, no overlap
    # Below 2 x workers x chunk: plain chunks, as before (small files are not cut finer).
    assert split([Interval(0, 4 * MiB)], 1 * MiB, 4) == [(i * MiB, (i + 1) * MiB) for i in range(4)]
    gaps = [Interval(0, 10), Interval(100, 3 * MiB + 100)]
    assert sum(e - s for s, e in split(gaps, 256 * KiB, 4)) == 10 + 3 * MiB


def test_single_range_download_keeps_no_journal_and_resumes_nothing(hub, tmp_path, monkeypatch):
    """A file that is one range gets no journal file (nothing to resume from), and a stale
    journal an earlier run left beside it is removed, never believed."""
    entry = hub.add("one.bin", payload(100 * KiB))
    part = tmp_path / "m" / ".one.bin.pack-partial"
    part.parent.mkdir(parents=True)
    (tmp_path / "m" / ".one.bin.pack-partial.journal").write_text("not json\n0 10\n")
    opened = []
    real_open = Journal.open

    def spy(self, fresh):
        opened.append(self.enabled)
        return real_open(self, fresh)

    monkeypatch.setattr(Journal, "open", spy)
    result = fetch(hub.manifest(), str(tmp_path), settings=FAST, env=hub.env)
    hub.assert_placed(str(tmp_path))
    assert opened == [False] and result.files[0].resumed_bytes == 0
    assert result.files[0].bytes_downloaded == entry.size
    assert sorted(os.listdir(tmp_path / "m")) == [".one.bin.pack-ok", "one.bin"]


def test_disabled_journal_deletes_a_journal_it_found(tmp_path):
    """A single-range download resets its partial file and keeps no journal; a journal left by
    an earlier run (here one that matches and claims the whole file) must go at once, or after a
    kill it would vouch for the reset, zero-filled partial file."""
    header = {"size": 100, "digest": "d"}
    old = Journal(str(tmp_path / "j"), header)
    old.open(fresh=True)
    old.record(0, 100)
    old.close()
    j = Journal(str(tmp_path / "j"), header)
    assert j.load() == [Interval(0, 100)]
    j.disable()
    assert not (tmp_path / "j").exists()
    j.open(fresh=True)
    j.record(0, 100)
    assert not (tmp_path / "j").exists() and Journal(str(tmp_path / "j"), header).load() == []


def test_secret_lookup_order_and_placeholder(tmp_path):
    (tmp_path / "tok").write_text("  from-file \n")
    env = {"TRUSS_SECRET_tok": "from-env", "TRUSS_SECRET_other": "env-only",
           "HF_TOKEN": "***", "HUGGING_FACE_HUB_TOKEN": "hub"}
    assert read_secret("tok", str(tmp_path), env) == "from-file"
    assert read_secret("other", str(tmp_path), env) == "env-only"
    assert hf_token(None, str(tmp_path), env) == "hub"  # "***" counts as missing
    (tmp_path / "aws").write_text(json.dumps({"aws_access_key_id": "a",
                                              "aws_secret_access_key": "b"}))
    creds = s3_credentials("aws", str(tmp_path), {})
    assert (creds.access_key_id, creds.secret_access_key) == ("a", "b")


def test_destination_mapping():
    entry = hf_entry("a.bin", b"x")
    assert map_destination(entry, "/data") == "/data/m/a.bin"
    assert map_destination(entry, None) == "/app/model_cache/m/a.bin"
    other = Entry(entry.source, entry.revision, 1, entry.hash, "/root/.cache/hf/x")
    assert map_destination(other, "/data") == "/data/root/.cache/hf/x"
    for bad in ("relative/x", "/app/model_cache/../x", "/app/model_cache//x"):
        with pytest.raises(UnsafeDestination):
            map_destination(Entry(entry.source, entry.revision, 1, entry.hash, bad), "/data")


def test_default_workers_scale_with_cores():
    assert default_workers(2) == 8 and default_workers(8) == 32 and default_workers(64) == 64


def test_ranges_are_handed_out_breadth_first_within_a_group_of_files():
    """Every file of a group gets a worker at its hash frontier before any file gets a second
    range, so the group's digests run side by side; the next group waits its turn."""
    settings = TransferSettings(files_in_flight=2, chunk_size=MiB).resolved({}, workers=4)
    scheduler = Scheduler(settings, reporter=None, cache=None)
    jobs = [SimpleNamespace(index=i) for i in range(3)]
    for job in reversed(jobs):  # submission order must not matter
        for offset in (2 * MiB, 0, MiB):
            scheduler.submit(job, offset, lambda job=job, offset=offset: (job.index, offset // MiB))
        scheduler.submit(job, -1, lambda job=job: (job.index, "prepare"))
    order = [scheduler._queue.get_nowait()[-1]() for _ in range(12)]
    assert order == [
        (0, "prepare"), (1, "prepare"), (0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2),
        (2, "prepare"), (2, 0), (2, 1), (2, 2),
    ]
    assert TransferSettings().resolved({}, workers=6).files_in_flight == 6
    assert TransferSettings().resolved({"PACK_TRANSFER_FILES_IN_FLIGHT": "3"}).files_in_flight == 3


def test_gcs_media_download_through_emulator_host(hub, tmp_path):
    data = payload(600 * KiB)
    hub.server.files["/download/storage/v1/b/bkt/o/dir%2Fw.bin"] = data
    entry = Entry(Source("gcs", "bkt", "dir/w.bin"), Revision("1", "1712"), len(data),
                  Digest("md5", digest_of(data, "md5")), "/app/model_cache/g/dir/w.bin", "g")
    env = {"STORAGE_EMULATOR_HOST": hub.server.base_url}
    fetch(Manifest((entry,)), str(tmp_path), settings=FAST, env=env)
    assert (tmp_path / "g" / "dir" / "w.bin").read_bytes() == data
    assert hub.server.counters.requests > 1  # ranged from the first request


def test_log_reporter_writes_progress_lines(hub, tmp_path, caplog):
    hub.add("a.bin", payload(300 * KiB))
    with caplog.at_level(logging.INFO, logger="packager.transfer"):
        fetch(hub.manifest(), str(tmp_path), settings=FAST, env=hub.env,
              reporter=LogReporter(interval=0))
    text = caplog.text
    assert "fetching 1 files" in text and "fetched 1 files" in text and "%" in text


def test_module_entry_point_exit_codes(hub, tmp_path):
    hub.add("a.bin", payload(10 * KiB))
    manifest = tmp_path / "m.json"
    manifest.write_text(hub.manifest().to_json())
    ok = subprocess.run(transfer_cmd(str(manifest), str(tmp_path / "d"), "--stats",
                                     str(tmp_path / "s.json")), env=child_env(hub),
                        capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "s.json").read_text())["files"][0]["status"] == "downloaded"
    hub.server.faults.token = "needed"
    bad = subprocess.run(transfer_cmd(str(manifest), str(tmp_path / "e")), env=child_env(hub),
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1 and "HTTP 401" in bad.stderr


def test_pack_fetch_command(hub, tmp_path, monkeypatch):
    from packager.cli.fetch_cmd import fetch_command

    hub.add("a.bin", payload(10 * KiB))
    monkeypatch.setenv("HF_ENDPOINT", hub.server.base_url)
    truss = tmp_path / "truss"
    truss.mkdir()
    runner = CliRunner()
    missing_lock = runner.invoke(fetch_command, [str(truss), "--dest", str(tmp_path / "d")])
    assert isinstance(missing_lock.exception, PackError) and "pack.lock" in str(missing_lock.exception)
    (truss / LOCK_FILENAME).write_text(lock_text(Lock(inputs_digest="test", manifest=hub.manifest())))
    result = runner.invoke(fetch_command, [str(truss), "--dest", str(tmp_path / "d"),
                                           "--stats", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    hub.assert_placed(str(tmp_path / "d"))
    hub.server.faults.token = "needed"
    failed = runner.invoke(fetch_command, [str(truss), "--dest", str(tmp_path / "e")])
    assert isinstance(failed.exception, TransferError) and "HTTP 401" in str(failed.exception)


def test_runtime_copy_runs_without_pack_installed(hub, tmp_path):
    """packager/runtime is copied verbatim into images: it must work from a bare copy."""
    import shutil

    from .conftest import REPO_ROOT

    image = tmp_path / "image"
    shutil.copytree(os.path.join(REPO_ROOT, "packager", "runtime"), image / "packager" / "runtime",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(REPO_ROOT, "packager", "constants.py"), image / "packager")
    (image / "packager" / "__init__.py").write_text("")
    hub.add("a.bin", payload(300 * KiB))
    manifest = tmp_path / "m.json"
    manifest.write_text(hub.manifest().to_json())
    check = ("import sys, runpy; sys.argv = sys.argv[1:]; "
             "runpy.run_module('packager.runtime.transfer', run_name='__main__')")
    # -S: no site-packages at all (pack is installed there in development), -E: no PYTHONPATH;
    # the bare copy in the working directory is all there is, as in an image.
    env = child_env(hub)
    proc = subprocess.run([sys.executable, "-S", "-E", "-c", check, "x", str(manifest), "--dest",
                           str(tmp_path / "d")], cwd=image, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    hub.assert_placed(str(tmp_path / "d"))
    probe = ("import sys, packager.runtime.transfer; print(sys.modules['packager'].__file__); "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', "
             "'google', 'rich', 'click', 'pydantic', 'yaml', 'tests'}))")
    leaked = subprocess.run(
        [sys.executable, "-S", "-E", "-c", probe], cwd=image, capture_output=True, text=True, timeout=60, check=False)
    where, modules = leaked.stdout.split()
    assert where.startswith(str(image)) and modules == "[]", leaked.stderr
