"""The weight prefetch: started before the model import, hidden behind it, collected by
lazy_data_resolver (whole manifest or per folder), failures re-raised, the warm node cache,
/metrics, and the truss-transfer-cli command."""

from __future__ import annotations

import hashlib
import subprocess
import time

import pytest

from packager.runtime.manifest import Digest, Entry, Manifest, Revision, Source
from tests.fixtures.range_server import RangeServer
from tests.runtime.harness import (
    REPO_ROOT,
    RUNTIME_PYTHON,
    make_app,
    runtime_env,
)

MiB = 1024 * 1024
SHA = "0" * 40


def blob(size: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


def manifest_for(server: RangeServer, files: dict[str, bytes]) -> Manifest:
    """files: '<folder>/<name>' -> content, served by `server` and listed as https entries."""
    entries = []
    for rel, data in files.items():
        server.files[f"/w/{rel}"] = data
        entries.append(Entry(
            source=Source("https", server.base_url, server.url(f"/w/{rel}")),
            revision=Revision("", SHA), size=len(data),
            hash=Digest("sha256", hashlib.sha256(data).hexdigest()),
            destination=f"/app/model_cache/{rel}", volume_folder=rel.split("/")[0]))
    return Manifest(tuple(sorted(entries, key=lambda e: e.destination)))


SLOW_IMPORT_MODEL = """
    import hashlib
    import time

    time.sleep(2.0)  # stands in for `import torch`


    class Model:
        def __init__(self, lazy_data_resolver, data_dir):
            self._resolver = lazy_data_resolver
            self._cache = data_dir.parent / "model_cache"

        def load(self):
            self._resolver.block_until_download_complete()
            self.digest = hashlib.sha256((self._cache / "llm" / "weights.bin").read_bytes()).hexdigest()

        def predict(self, x):
            return self.digest
"""

FOLDER_MODEL = """
    import time


    class Model:
        def __init__(self, **kwargs):
            self._resolver = kwargs["lazy_data_resolver"]
            self._cache = kwargs["data_dir"].parent / "model_cache"

        def load(self):
            started = time.monotonic()
            path = self._resolver.block_until_folder_complete("small")
            self.small_wait = time.monotonic() - started
            self.small = (self._cache / "small" / "s.bin").stat().st_size
            self.big_visible_early = (self._cache / "big" / "b.bin").exists()
            self.path = path
            self._resolver.block_until_download_complete()

        def predict(self, x):
            return {"small_wait": self.small_wait, "small": self.small, "path": self.path,
                    "big_visible_early": self.big_visible_early}
"""

PER_FOLDER_ONLY_MODEL = """
    class Model:
        def __init__(self, lazy_data_resolver):
            self._resolver = lazy_data_resolver

        def load(self):
            for folder in ("a", "b"):
                self._resolver.block_until_download_complete(volume_folder=folder)

        def predict(self, x):
            return "ok"
"""

COLLECTING_MODEL = """
    class Model:
        def __init__(self, lazy_data_resolver):
            self._resolver = lazy_data_resolver

        def load(self):
            self._resolver.block_until_download_complete()

        def predict(self, x):
            return "ok"
"""

NEVER_COLLECTS = """
    class Model:
        def __init__(self, **kwargs):
            pass

        def predict(self, x):
            return "ok"
"""


@pytest.fixture
def server():
    with RangeServer() as srv:
        yield srv


def test_prefetch_is_hidden_behind_a_slow_import(tmp_path, runtimes, server):
    data = blob(4 * MiB, 1)
    manifest = manifest_for(server, {"llm/weights.bin": data})
    server.faults.rate = 2 * MiB  # about 2 s of download, as long as the import
    app = make_app(tmp_path, SLOW_IMPORT_MODEL, manifest=manifest)
    rt = runtimes(app)
    ready_after = rt.wait_ready(30)
    assert rt.predict({}) == (200, hashlib.sha256(data).hexdigest())

    timeline = rt.timeline()
    stages, download = timeline["stages"], timeline["download"]
    assert stages["prefetch_start"] < 0.6 < stages["import_end"]
    assert download["wall_seconds"] >= 1.5 and download["hidden_seconds"] >= 1.2
    assert download["bytes_downloaded"] == 4 * MiB and download["ok"] is True
    # Sequential would be start-up + 2 s import + 2 s download; overlapped it is about one of them.
    assert stages["ready"] < stages["import_end"] + 1.0
    assert ready_after < 4.0, stages

    _, _, body = rt.request("GET", "/metrics")
    text = body.decode()
    assert "model_cache_manifest_size_bytes 4194304" in text
    assert 'model_cache_transfer_success_total{success="True"} 1' in text
    assert "model_cache_files_downloaded_total 1" in text
    hidden = float(text.split("\nmodel_cache_file_download_hidden_time_seconds ")[1].split()[0])
    assert hidden >= 1.2
    assert "model_cache_download_time_seconds_count 1" in text
    for name in ("manifest_size_bytes", "download_time_seconds", "download_speed_mbps",
                 "files_downloaded_total", "file_size_bytes_total", "file_download_hidden_time_seconds",
                 "file_download_time_seconds", "file_download_speed_mbps", "b10fs_enabled",
                 "b10fs_decision_to_use", "b10fs_read_speed_mbps", "b10fs_hot_starts_files",
                 "b10fs_hot_starts_bytes", "b10fs_cold_starts_files", "b10fs_cold_starts_bytes",
                 "transfer_success_total"):  # every name of truss-compat §2.10
        assert f"# TYPE model_cache_{name} " in text, name


def test_one_folder_can_be_awaited_while_another_downloads(tmp_path, runtimes, server):
    manifest = manifest_for(server, {"small/s.bin": blob(64 * 1024, 2), "big/b.bin": blob(3 * MiB, 3)})
    server.faults.rate = 2 * MiB
    app = make_app(tmp_path, FOLDER_MODEL, manifest=manifest)
    rt = runtimes(app)
    rt.wait_ready(30)
    status, body = rt.predict({})
    assert status == 200
    assert body["small"] == 64 * 1024 and body["path"] == str(app.model_cache / "small")
    assert body["small_wait"] < 1.0
    assert body["big_visible_early"] is False  # never a partial file at its final path
    assert (app.model_cache / "big" / "b.bin").stat().st_size == 3 * MiB


def test_waiting_for_every_folder_collects_the_manifest(tmp_path, runtimes, server):
    manifest = manifest_for(server, {"a/1.bin": b"1" * 1000, "b/2.bin": b"2" * 1000})
    rt = runtimes(make_app(tmp_path, PER_FOLDER_ONLY_MODEL, manifest=manifest))
    rt.wait_ready(30)
    assert rt.predict({}) == (200, "ok")


def test_a_download_failure_is_reraised_by_block_until_download_complete(tmp_path, runtimes, server):
    manifest = manifest_for(server, {"llm/weights.bin": b"x" * 100})
    server.files.clear()  # every request is a 404 now
    rt = runtimes(make_app(tmp_path, COLLECTING_MODEL, manifest=manifest))
    assert rt.wait_exit(30) == 1
    logs = rt.logs()
    assert "RuntimeError: Error occurred while fetching data: 1 file could not be fetched" in logs
    assert "llm/weights.bin" in logs


def test_a_model_that_never_collects_fails_its_load_with_the_fix(tmp_path, runtimes, server):
    manifest = manifest_for(server, {"llm/weights.bin": b"y" * 100})
    rt = runtimes(make_app(tmp_path, NEVER_COLLECTS, manifest=manifest))
    assert rt.wait_exit(30) == 1
    logs = rt.logs()
    assert ("model_cache: Data was not collected. Missing "
            "lazy_data_resolver.block_until_download_complete()") in logs
    assert "self._lazy_data_resolver.block_until_download_complete()" in logs  # the fix


WEIGHTS_API_MODEL = """
    import os


    class Model:
        # A model written for Truss's `weights:` API: no lazy_data_resolver, it just reads
        # (under the harness's relocated /app, hence data_dir's sibling for /app/model_cache).
        def __init__(self, data_dir):
            self._root = str(data_dir.parent / "model_cache")

        def load(self):
            self.files = sorted(os.listdir(os.path.join(self._root, "w")))
            self.size = os.path.getsize(os.path.join(self._root, "w", "weights.bin"))

        def predict(self, x):
            return {"files": self.files, "size": self.size}
"""


def test_weights_api_files_are_in_place_before_load_and_alone(tmp_path, runtimes, server):
    data = blob(2 * MiB, 7)
    manifest = manifest_for(server, {"w/weights.bin": data, "w/config.json": b"{}"})
    server.faults.rate = 4 * MiB  # the load would run ahead of the download if it did not wait
    config = {"weights": [{"source": "https://example.invalid/w", "mount_location": "/app/model_cache"}]}
    app = make_app(tmp_path, WEIGHTS_API_MODEL, config=config, manifest=manifest)
    rt = runtimes(app)
    rt.wait_ready(30)
    # Exactly the source's files: the verified markers live in the state dir, not beside them.
    assert rt.predict({}) == (200, {"files": ["config.json", "weights.bin"], "size": 2 * MiB})
    assert len(list((app.state / "pack-markers").iterdir())) == 2


def test_a_warm_node_cache_means_no_download_on_the_second_start(tmp_path, runtimes, server):
    data = blob(2 * MiB, 4)
    manifest = manifest_for(server, {"llm/weights.bin": data})
    cache = tmp_path / "node-cache"
    first = runtimes(make_app(tmp_path / "one", COLLECTING_MODEL, manifest=manifest), PACK_CACHE_DIR=str(cache))
    first.wait_ready()
    served = server.counters.bytes_served
    second = runtimes(make_app(tmp_path / "two", COLLECTING_MODEL, manifest=manifest), PACK_CACHE_DIR=str(cache))
    second.wait_ready()
    assert server.counters.bytes_served == served  # nothing fetched from the source
    download = second.timeline()["download"]
    assert download["bytes_downloaded"] == 0 and download["cache_hits"] == 1
    text = second.request("GET", "/metrics")[2].decode()
    assert "model_cache_b10fs_hot_starts_files 1" in text and "model_cache_b10fs_cold_starts_files 0" in text


def _cli(app, *args: str) -> subprocess.CompletedProcess:
    env = runtime_env(app, 0)
    return subprocess.run([RUNTIME_PYTHON, "-m", "packager.runtime.prefetch.truss_transfer_cli", *args],
                          env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_truss_transfer_cli_fetches_then_returns_at_once(tmp_path, server):
    data = blob(1 * MiB, 5)
    app = make_app(tmp_path, None, manifest=manifest_for(server, {"llm/w.bin": data}))
    first = _cli(app)
    assert first.returncode == 0, first.stderr
    assert (app.model_cache / "llm" / "w.bin").read_bytes() == data
    requests = server.counters.requests
    started = time.monotonic()
    again = _cli(app)
    assert again.returncode == 0 and "already in place" in again.stderr
    assert server.counters.requests == requests and time.monotonic() - started < 5


def test_truss_transfer_cli_download_dir_argument(tmp_path, server):
    app = make_app(tmp_path, None, manifest=manifest_for(server, {"llm/w.bin": b"z" * 10}))
    result = _cli(app, str(tmp_path / "elsewhere"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "elsewhere" / "llm" / "w.bin").read_bytes() == b"z" * 10


def test_truss_transfer_cli_exit_codes_without_manifest_and_on_failure(tmp_path, server):
    assert _cli(make_app(tmp_path / "none", None)).returncode == 0
    manifest = manifest_for(server, {"llm/w.bin": b"q" * 10})
    server.files.clear()
    failed = _cli(make_app(tmp_path / "bad", None, manifest=manifest))
    assert failed.returncode == 1 and "could not be fetched" in failed.stderr


# --- the prefetch worker is its own OS process ----------------------------------------------------
def _worker_pid(app, timeout: float = 15.0) -> int:
    """The prefetch worker's pid, from the state file it writes while fetching."""
    import json

    deadline = time.monotonic() + timeout
    state = app.state / "pack-prefetch-state.json"
    while time.monotonic() < deadline:
        try:
            doc = json.loads(state.read_text())
            if doc.get("state") == "running":
                return int(doc["pid"])
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise AssertionError("the prefetch worker never reported running")


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def _gone(pid: int, timeout: float = 10.0) -> bool:
    """True once `pid` no longer exists (neither running nor a zombie)."""
    import os

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.05)
    return False


def _slow_app(tmp_path, server, model=COLLECTING_MODEL):
    manifest = manifest_for(server, {"llm/weights.bin": blob(8 * MiB, 7)})
    server.faults.rate = 2 * MiB  # about 4 s: time to look at the worker while it runs
    return make_app(tmp_path, model, manifest=manifest)


def test_the_prefetch_runs_in_a_child_process_of_the_server(tmp_path, runtimes, server):
    app = _slow_app(tmp_path, server)
    rt = runtimes(app)
    pid = _worker_pid(app)
    assert pid != rt.proc.pid and _parent_of(pid) == rt.proc.pid
    rt.wait_ready(30)
    assert _gone(pid)  # finished and reaped: no zombie left under the server


def test_a_killed_worker_is_a_clear_failure_not_a_hang(tmp_path, runtimes, server):
    import os
    import signal

    app = _slow_app(tmp_path, server)
    rt = runtimes(app)
    os.kill(_worker_pid(app), signal.SIGKILL)
    assert rt.wait_exit(30) == 1
    logs = rt.logs()
    assert "RuntimeError: Error occurred while fetching data: the prefetch process" in logs
    assert "was killed by SIGKILL before the weights were in place" in logs
    assert rt.timeline()["download"]["ok"] is False


def test_sigterm_ends_the_worker_with_the_server(tmp_path, runtimes, server):
    import signal

    app = _slow_app(tmp_path, server)
    rt = runtimes(app)
    pid = _worker_pid(app)
    rt.wait_listening()
    assert rt.stop(signal.SIGTERM) == 0
    assert _gone(pid)


def test_a_killed_server_takes_its_worker_along(tmp_path, runtimes, server):
    app = _slow_app(tmp_path, server)
    rt = runtimes(app)
    pid = _worker_pid(app)
    rt.proc.kill()
    rt.proc.wait(10)
    assert _gone(pid)  # never outlives the server (PR_SET_PDEATHSIG, then a parent poll)


def test_truss_transfer_cli_waits_for_the_servers_worker(tmp_path, runtimes, server):
    app = _slow_app(tmp_path, server)
    rt = runtimes(app)
    _worker_pid(app)
    server.faults.rate = 4 * MiB
    result = _cli(app)  # blocks on the worker's prefetch lock, then finds it done
    assert result.returncode == 0 and "already in place" in result.stderr, result.stderr
    rt.wait_ready(30)
    assert server.counters.bytes_served == 8 * MiB  # fetched once, by the server's worker


def _thread_nice_values(pid: int) -> list[int]:
    """The nice value of every thread of `pid` (field 19 of /proc/<pid>/task/<tid>/stat)."""
    import os

    values = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                values.append(int(fh.read().rsplit(")", 1)[1].split()[16]))
        except (OSError, IndexError, ValueError):
            pass
    return values


def test_download_threads_stay_niced_until_the_model_waits_for_the_weights(tmp_path, runtimes, server):
    """While model.py imports, the import is what readiness waits for: the worker's download
    threads run niced (19 by default). Once load() waits, the download is: they are replaced by threads at
    normal priority and the file still arrives whole."""
    app = _slow_app(tmp_path, server, SLOW_IMPORT_MODEL)  # 2 s import, 8 MiB at 2 MiB/s
    started = time.monotonic()
    rt = runtimes(app)
    pid = _worker_pid(app)
    during_import: set[int] = set()
    while time.monotonic() < started + 1.5 and 19 not in during_import:
        during_import.update(_thread_nice_values(pid))
        time.sleep(0.05)
    assert 19 in during_import
    # The import ends about 2.3 s in and load() waits; the download runs until about 4.3 s.
    time.sleep(max(0.0, started + 3.2 - time.monotonic()))
    assert server.counters.bytes_served < 8 * MiB, "the download ended too early to look at"
    assert 19 not in _thread_nice_values(pid), "niced download threads still running after the wait"
    rt.wait_ready(30)
    assert rt.predict({}) == (200, hashlib.sha256(blob(8 * MiB, 7)).hexdigest())
    stages = rt.timeline()["stages"]
    assert stages["import_end"] <= stages["prefetch_boost"] < stages["prefetch_end"]
