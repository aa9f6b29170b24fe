"""Benchmark the weight transfer engine against its peers on a local server; prints a table.

    python benchmarks/transfer.py [--scale 1.0] [--workers N] [--repeat 3] [--memory warm|touched|cold|as-is]
                                   [--only pack,truss,...] [--workloads 1,2,3]
    bash scripts/install-bench-peers.sh   # once, for the hf_transfer column

Workloads (the issue's sizes, times --scale): one 2 GiB file, eight 256 MiB shards, two hundred
1 MiB files, served from one directory by tests.fixtures.range_server in its own process
(sendfile, keep-alive, plus the two HF API calls snapshot_download makes). Columns:

* pack sha256 / pack size-only: `python -m packager.runtime.transfer` on a manifest with the
  files' sha256, then with no digest (size only, as every peer checks).
* pack sha256 direct / pack size direct: the same with --direct-io (O_DIRECT writes, past the
  page cache); direct read-back: the first buffered read of those files afterwards, which a
  model load then pays instead (the page cache fills on that read, not during the download).
* snapshot_download: huggingface_hub's own downloader from pack's environment (plain HTTP).
* hf_transfer: huggingface_hub 0.36 with HF_HUB_ENABLE_HF_TRANSFER=1 (the Rust parallel
  downloader), from /opt/pack-bench-peers (scripts/install-bench-peers.sh; skipped otherwise).
* truss-transfer: the Rust downloader Truss ships (--truss-python, else /opt/pack-truss-venv,
  /opt/truss-venv, this interpreter), on a bptr manifest whose URLs point at the local server.
  It reads its manifest only from /bptr/bptr-manifest.json, so that column needs write access
  to /bptr and is skipped, with the reason, when that file already exists (never clobbered).
* naive 1-stream: one connection, whole files in order, no hashing.
* curl limit: 8 parallel curl transfers of 16 MiB ranges to /dev/null (loopback plus server
  cost); disk limit: a raw page-cache write of the same bytes (each an upper bound alone).
  direct disk limit: the same bytes written with O_DIRECT (the device past the page cache).
* 8 threads to disk: the issue's "simple 8-thread ranged client", 16 MiB ranges written into
  the files through the page cache: the limit for a download that lands on disk (no hashing).

Every peer's time is measured around its download call inside its own process (interpreter
start-up and imports excluded, as for pack, whose seconds come from its stats file). Peers
check sizes only; compare them with "pack size-only" and, for the cost of verification, with
"pack sha256". pack's peak RSS comes from wait4. No assertions: figures only.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import mmap
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from functools import partial
from urllib.parse import urlsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from packager.runtime.manifest import Digest, Entry, Manifest, Revision, Source  # noqa: E402 (after sys.path)

MiB = 1024 * 1024
SHA = "b" * 40
REPO = "bench/model"


def make_files(root: str, name: str, count: int, size: int) -> list[tuple[str, int, str]]:
    """Write `count` files of `size` bytes under the server's HF path; returns (path, size, sha)."""
    folder = os.path.join(root, REPO, "resolve", SHA, name)
    os.makedirs(folder, exist_ok=True)
    out = []
    block = os.urandom(4 * MiB)
    for i in range(count):
        path = os.path.join(folder, f"part-{i:04d}.bin")
        h = hashlib.sha256()
        with open(path, "wb") as fh:
            left = size
            salt = i.to_bytes(8, "little")
            while left:
                piece = (salt + block[8:])[: min(left, len(block))]
                fh.write(piece)
                h.update(piece)
                left -= len(piece)
        out.append((f"{name}/part-{i:04d}.bin", size, h.hexdigest()))
    return out


def manifest_for(files: list[tuple[str, int, str]], verify: bool) -> Manifest:
    entries = tuple(
        Entry(Source("hf", REPO, rel), Revision("main", SHA), size,
              Digest("sha256", sha) if verify else Digest("none", ""),
              f"/app/model_cache/bench/{rel}", "bench")
        for rel, size, sha in files
    )
    return Manifest(tuple(sorted(entries, key=lambda e: e.destination)))


def run_pack(manifest: Manifest, base_url: str, work: str, workers: int | None,
             direct: bool = False) -> dict:
    path = os.path.join(work, "manifest.json")
    with open(path, "w") as fh:
        fh.write(manifest.to_json())
    dest, stats = os.path.join(work, "dest"), os.path.join(work, "stats.json")
    shutil.rmtree(dest, ignore_errors=True)
    cmd = [sys.executable, "-m", "packager.runtime.transfer", path, "--dest", dest,
           "--stats", stats, "--log-interval", "3600"]
    if workers:
        cmd += ["--workers", str(workers)]
    if direct:
        cmd += ["--direct-io"]
    env = dict(os.environ, HF_ENDPOINT=base_url, PYTHONPATH=ROOT)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"pack failed:\n{err}")
    with open(stats) as fh:
        doc = json.load(fh)
    read_back = read_all(dest) if direct else None
    shutil.rmtree(dest, ignore_errors=True)
    return {"seconds": doc["seconds"], "wall": wall, "rss_mib": usage.ru_maxrss / 1024,
            "workers": doc["workers"], "streams": doc["streams"],
            "cpu": usage.ru_utime + usage.ru_stime, "read_back": read_back}


def read_all(root: str) -> float:
    """Seconds to read every file under root once, through the page cache: what the first
    model load pays for files written with direct I/O (they are not cached)."""
    buf = bytearray(8 * MiB)
    t0 = time.monotonic()
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb", buffering=0) as fh:
                while fh.readinto(buf):
                    pass
    return time.monotonic() - t0


def run_naive(files, base_url: str, work: str) -> float:
    """One connection at a time, whole files in order, no hashing (urllib, like a plain script).

    Every file is kept under its own name, as any real client does: writing them all to one
    path would truncate the previous file's dirty pages away, a saving no downloader gets."""
    dest = os.path.join(work, "naive")
    shutil.rmtree(dest, ignore_errors=True)
    for rel, _, _ in files:
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
    t0 = time.monotonic()
    for rel, _, _ in files:
        url = f"{base_url}/{REPO}/resolve/{SHA}/{rel}"
        with urllib.request.urlopen(url) as resp, open(os.path.join(dest, rel), "wb") as out:
            shutil.copyfileobj(resp, out, MiB)
    seconds = time.monotonic() - t0
    shutil.rmtree(dest, ignore_errors=True)
    return seconds


TRUSS_MANIFEST = "/bptr/bptr-manifest.json"
TRUSS_PYTHONS = ("/opt/pack-truss-venv/bin/python", "/opt/truss-venv/bin/python", sys.executable)
_TRUSS_CODE = (
    "import sys, time, truss_transfer\n"
    "t = time.monotonic(); truss_transfer.lazy_data_resolve(sys.argv[1])\n"
    "print(time.monotonic() - t)\n"
)


def find_truss(explicit: str | None) -> tuple[str | None, str]:
    """A Python that imports truss_transfer, or (None, why not)."""
    candidates = [explicit] if explicit else list(TRUSS_PYTHONS)
    for python in candidates:
        if not python or not os.path.exists(python):
            continue
        code = "import truss_transfer, importlib.metadata as m; print(m.version('truss-transfer'))"
        probe = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            version = probe.stdout.strip()
            if os.path.exists(TRUSS_MANIFEST):
                return None, f"{TRUSS_MANIFEST} already exists (not overwritten)"
            try:
                os.makedirs(os.path.dirname(TRUSS_MANIFEST), exist_ok=True)
                with open(TRUSS_MANIFEST, "w"):
                    pass
                os.unlink(TRUSS_MANIFEST)
            except OSError as exc:
                return None, f"cannot write {TRUSS_MANIFEST} (its only manifest location): {exc}"
            return python, f"truss-transfer {version} ({python})"
    return None, "no Python with truss_transfer found (pip install truss-transfer)"


def run_truss(python: str, files, base_url: str, work: str) -> float:
    """truss-transfer on a bptr manifest pointing at the local server; seconds inside the call."""
    out = os.path.join(work, "truss-out")
    shutil.rmtree(out, ignore_errors=True)
    pointers = [{
        "resolution": {"resolution_type": "http", "url": f"{base_url}/{REPO}/resolve/{SHA}/{rel}",
                       "expiration_timestamp": 4044816725},
        "uid": f"{REPO}:main:{rel}", "file_name": os.path.join(out, rel),
        "hashtype": "etag", "hash": sha, "size": size, "runtime_secret_name": "hf_access_token",
    } for rel, size, sha in files]
    with open(TRUSS_MANIFEST, "w") as fh:
        json.dump({"pointers": pointers, "models": None}, fh)
    try:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update(TRUSS_TRANSFER_LOG="warn", TRUSS_TRANSFER_DOWNLOAD_DIR=out)
        proc = subprocess.run([python, "-c", _TRUSS_CODE, out], capture_output=True, text=True,
                              env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"truss-transfer failed: {proc.stderr[-2000:]}")
        seconds = float(proc.stdout.strip().splitlines()[-1])
        for rel, size, _ in files:
            if os.path.getsize(os.path.join(out, rel)) != size:
                raise RuntimeError(f"truss-transfer wrote a wrong size for {rel}")
        return seconds
    finally:
        os.unlink(TRUSS_MANIFEST)
        shutil.rmtree(out, ignore_errors=True)


PEERS_PYTHON = "/opt/pack-bench-peers/bin/python"
_SNAPSHOT_CODE = (
    "import sys, time, huggingface_hub as h\n"
    "t = time.monotonic()\n"
    "path = h.snapshot_download(sys.argv[1], revision=sys.argv[2], allow_patterns=[sys.argv[3]])\n"
    "print(time.monotonic() - t); print(path)\n"
)


def find_hf_transfer() -> tuple[str | None, str]:
    code = ("import hf_transfer, huggingface_hub as h, importlib.metadata as m; "
            "print(h.__version__, m.version('hf_transfer'))")
    if not os.path.exists(PEERS_PYTHON):
        return None, f"{PEERS_PYTHON} missing (bash scripts/install-bench-peers.sh)"
    probe = subprocess.run([PEERS_PYTHON, "-c", code], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return None, f"{PEERS_PYTHON} cannot import hf_transfer (bash scripts/install-bench-peers.sh)"
    hub, hft = probe.stdout.split()
    return PEERS_PYTHON, f"huggingface_hub {hub} + hf_transfer {hft} ({PEERS_PYTHON})"


def run_snapshot(python: str, files, base_url: str, work: str, hf_transfer: bool) -> float:
    """huggingface_hub.snapshot_download of one workload's folder into a fresh cache."""
    cache = os.path.join(work, "hf-cache")
    shutil.rmtree(cache, ignore_errors=True)
    folder = files[0][0].split("/", 1)[0]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("HF_")}
    env.update(HF_ENDPOINT=base_url, HF_HUB_CACHE=cache, HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_ETAG_TIMEOUT="60",
               HF_HUB_DOWNLOAD_TIMEOUT="60")
    if hf_transfer:
        env["HF_HUB_ENABLE_HF_TRANSFER"] = "1"
    try:
        proc = subprocess.run([python, "-c", _SNAPSHOT_CODE, REPO, SHA, f"{folder}/*"],
                              capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"snapshot_download failed: {proc.stderr[-2000:]}")
        seconds, snapshot = proc.stdout.strip().splitlines()[-2:]
        for rel, size, _ in files:
            if os.path.getsize(os.path.join(snapshot, rel)) != size:
                raise RuntimeError(f"snapshot_download wrote a wrong size for {rel}")
        return float(seconds)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def run_curl_limit(files, base_url: str, work: str, parallel: int = 8, chunk: int = 16 * MiB) -> float:
    """curl --parallel over 16 MiB ranges into /dev/null: what loopback + server can deliver."""
    config = os.path.join(work, "curl.cfg")
    # Options reset at each `next`, so every transfer carries its own.
    groups = [f'url = "{base_url}/{REPO}/resolve/{SHA}/{rel}"\nrange = "{start}-{min(size, start + chunk) - 1}"\n'
              'output = "/dev/null"\nsilent\nshow-error\nfail\n'
              for rel, size, _ in files for start in range(0, size, chunk)]
    with open(config, "w") as fh:
        fh.write("next\n".join(groups))
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    t0 = time.monotonic()
    proc = subprocess.run(["curl", "--parallel", "--parallel-max", str(parallel), "--config", config],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"curl failed: {proc.stderr[-2000:]}")
    return time.monotonic() - t0


def run_threads_to_disk(files, base_url: str, work: str, threads: int = 8, chunk: int = 16 * MiB) -> float:
    """The issue's "simple 8-thread ranged client": 8 keep-alive connections take 16 MiB ranges
    in order and pwrite them into pre-sized files through the page cache; no hashing, no retries.
    The machine's limit for a download that lands on disk (network and page cache sharing the
    cores), which curl cannot show: it writes its output 16 KiB at a time."""
    dest = os.path.join(work, "threads")
    shutil.rmtree(dest, ignore_errors=True)
    fds = {}
    for rel, size, _ in files:
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        fds[rel] = os.open(os.path.join(dest, rel), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(fds[rel], size)
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for rel, size, _ in files:
        for start in range(0, size, chunk):
            todo.put((rel, start, min(size, start + chunk)))
    url = urlsplit(base_url)
    failures: list[BaseException] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        buf = memoryview(bytearray(MiB))
        try:
            conn.connect()
            # as curl does: small requests must not wait on Nagle and a delayed ACK
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                try:
                    rel, start, end = todo.get_nowait()
                except queue.Empty:
                    return
                conn.request("GET", f"/{REPO}/resolve/{SHA}/{rel}", headers={"Range": f"bytes={start}-{end - 1}"})
                resp = conn.getresponse()
                offset = start
                while offset < end:
                    n = resp.readinto(buf[: min(MiB, end - offset)])
                    if not n:
                        raise RuntimeError(f"short response for {rel} at {offset}")
                    os.pwrite(fds[rel], buf[:n], offset)
                    offset += n
                resp.read()
        except BaseException as exc:  # noqa: BLE001 - any failure of a worker thread is reported by the caller
            failures.append(exc)
        finally:
            conn.close()

    t0 = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.monotonic() - t0
    for fd in fds.values():
        os.close(fd)
    shutil.rmtree(dest, ignore_errors=True)
    if failures:
        raise RuntimeError(f"8-thread client failed: {failures[0]!r}")
    return seconds


def run_disk_limit(total: int, work: str) -> float:
    block = os.urandom(MiB)
    path = os.path.join(work, "disk")
    t0 = time.monotonic()
    with open(path, "wb") as fh:
        fh.writelines(block for _ in range(total // MiB))
    seconds = time.monotonic() - t0
    os.unlink(path)
    return seconds


def run_direct_disk_limit(total: int, work: str) -> float:
    """The same bytes written with O_DIRECT in 8 MiB blocks: the device, past the page cache."""
    block = mmap.mmap(-1, 8 * MiB)  # page-aligned, as O_DIRECT needs
    block.write(os.urandom(8 * MiB))
    path = os.path.join(work, "disk")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    t0 = time.monotonic()
    try:
        for offset in range(0, total - total % (8 * MiB), 8 * MiB):
            os.pwrite(fd, block, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.monotonic() - t0
    os.unlink(path)
    return seconds


PAGE_REPORTING = "/sys/module/page_reporting/parameters/reported_kib"
MEMORY_STATES = ("warm", "touched", "cold", "as-is")


def prepare_memory(state: str, nbytes: int, work: str) -> None:
    """Put the machine's free memory in one known state just before a measured run.

    Some VMs (this sandbox's Firecracker guests among them) report freed pages to the host,
    which takes them back within a second or two; every page the page cache then takes is
    faulted in from the host again. Measured here on 2 GiB: `dd` into the page cache takes
    5.5 s on such pages, 2.4 s after anonymous memory was touched and freed, and 0.45 s
    right after a page-cache file of that size was deleted, the speed of a bare-metal host.
    Whether a tool pays that depends on what ran just before it, so each run starts from
    the same state:

    * warm: write and delete a scratch file of `nbytes` first (the page cache reuses what
      the host backs: a bare-metal node, or a node that has been running);
    * touched: touch and free `nbytes` of anonymous memory (part of the way there);
    * cold: wait until the host has taken freed memory back (a fresh VM);
    * as-is: nothing."""
    if state == "warm":
        path = os.path.join(work, "warm-up")
        block = bytes(8 * MiB)
        with open(path, "wb") as fh:
            for _ in range(-(-nbytes // len(block))):
                fh.write(block)
        # unlinked before writeback starts, so its dirty pages are dropped, not written
        os.unlink(path)
    elif state == "touched":
        code = ("import ctypes, mmap, sys; n = int(sys.argv[1]); "
                "m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS); "
                "ctypes.memset(ctypes.addressof(ctypes.c_char.from_buffer(m)), 1, n)")
        subprocess.run([sys.executable, "-c", code, str(nbytes)], check=True)
    elif state == "cold":
        time.sleep(4)


def start_server(directory: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.range_server", directory, "--hf-repo", f"{REPO}@{SHA}"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    return proc, proc.stdout.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every file size")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    parser.add_argument("--truss-python", default=None,
                        help="a Python with truss_transfer installed (default: look in /opt)")
    parser.add_argument("--memory", choices=MEMORY_STATES,
                        default="warm" if os.path.exists(PAGE_REPORTING) else "as-is",
                        help="the state of free memory before each run (see prepare_memory; "
                             "default: warm where the kernel hands freed pages back to a "
                             "hypervisor, else as-is)")
    parser.add_argument("--workloads", default=None,
                        help="comma-separated workload numbers to run (1: 1 x 2 GiB, "
                             "2: 8 x 256 MiB, 3: 200 x 1 MiB; default: all)")
    parser.add_argument("--only", default=None,
                        help="comma-separated columns to run (pack,direct,snapshot,hf_transfer,truss,naive,limits)")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None

    def wanted(column: str) -> bool:
        return only is None or column in only

    truss_python, truss_note = find_truss(args.truss_python) if wanted("truss") else (None, "--only")
    peers_python, peers_note = find_hf_transfer() if wanted("hf_transfer") else (None, "--only")
    created_bptr = truss_python is not None and not os.listdir(os.path.dirname(TRUSS_MANIFEST))
    workloads = [
        ("1 x 2 GiB", 1, int(2048 * MiB * args.scale)),
        ("8 x 256 MiB", 8, int(256 * MiB * args.scale)),
        ("200 x 1 MiB", 200, max(4096, int(1 * MiB * args.scale))),
    ]
    if args.workloads:
        picked = {int(n) for n in args.workloads.split(",")}
        workloads = [w for i, w in enumerate(workloads, 1) if i in picked]
    columns = ["pack sha256", "pack size-only", "pack sha256 direct", "pack size direct",
               "direct read-back", "snapshot_download", "hf_transfer", "truss-transfer",
               "naive 1-stream", "curl limit", "8 threads to disk", "disk limit", "direct disk limit"]
    with tempfile.TemporaryDirectory(prefix="pack-bench-") as work:
        served = os.path.join(work, "served")
        datasets = {name: make_files(served, f"w{i}", count, size)
                    for i, (name, count, size) in enumerate(workloads)}
        # The served files' 4 GiB of dirty pages would otherwise be written back during the
        # first measured runs, throttling whichever tool happens to run then.
        os.sync()
        server, base_url = start_server(served)
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        workers = "?"
        try:
            print(f"cores: {os.cpu_count()}  server: {base_url} (separate process, sendfile)")
            print(f"MiB/s: best of {args.repeat} (lower median in parentheses)\n")
            header = f"{'workload':<12} {'total':>9}" + "".join(f" {c:>17}" for c in columns) + \
                f" {'pack peak RSS':>14} {'pack CPU s/GiB':>15} {'pack streams':>13}"
            print(header)
            print("-" * len(header))
            for name, _, _ in workloads:
                files = datasets[name]
                total = sum(size for _, size, _ in files)

                # Columns take turns within each repetition, so a slow spell of the machine hits
                # every tool alike; each column keeps its best run.
                measures: dict[str, object] = {}
                if wanted("pack"):
                    measures["pack sha256"] = partial(run_pack, manifest_for(files, True), base_url, work, args.workers)
                    measures["pack size-only"] = partial(run_pack, manifest_for(files, False), base_url, work,
                                                         args.workers)
                if wanted("direct"):
                    measures["pack sha256 direct"] = partial(run_pack, manifest_for(files, True), base_url, work,
                                                             args.workers, direct=True)
                    measures["pack size direct"] = partial(run_pack, manifest_for(files, False), base_url, work,
                                                           args.workers, direct=True)
                if wanted("snapshot"):
                    measures["snapshot_download"] = partial(run_snapshot, sys.executable, files, base_url, work, False)
                if peers_python:
                    measures["hf_transfer"] = partial(run_snapshot, peers_python, files, base_url, work, True)
                if truss_python:
                    measures["truss-transfer"] = partial(run_truss, truss_python, files, base_url, work)
                if wanted("naive"):
                    measures["naive 1-stream"] = partial(run_naive, files, base_url, work)
                if wanted("limits"):
                    measures["curl limit"] = partial(run_curl_limit, files, base_url, work)
                    measures["8 threads to disk"] = partial(run_threads_to_disk, files, base_url, work)
                    measures["disk limit"] = partial(run_disk_limit, total, work)
                    measures["direct disk limit"] = partial(run_direct_disk_limit, total, work)
                runs: dict[str, list] = {c: [] for c in measures}
                for _ in range(args.repeat):
                    for column, measure in measures.items():
                        prepare_memory(args.memory, total + 512 * MiB, work)
                        runs[column].append(measure())
                if "pack sha256 direct" in runs:
                    runs["direct read-back"] = [r["read_back"] for r in runs["pack sha256 direct"]]
                cells: dict[str, str] = dict.fromkeys(columns, "-")
                for column, results in runs.items():
                    rates = sorted(total / (r["seconds"] if isinstance(r, dict) else r) / MiB
                                   for r in results)
                    # best, then the median: on a noisy machine the spread is part of the answer
                    cells[column] = f"{rates[-1]:,.0f} ({rates[(len(rates) - 1) // 2]:,.0f})"
                rss = cpu = streams = "-"
                pairs = [(runs[v], runs[n]) for v, n in (("pack sha256", "pack size-only"),
                                                         ("pack sha256 direct", "pack size direct"))
                         if v in runs]
                if pairs:
                    workers = pairs[0][0][0]["workers"]
                    rss = f"{max(r['rss_mib'] for v, n in pairs for r in v + n):.0f} MiB"
                    # CPU seconds per GiB (sha256/size-only, then the same with direct I/O):
                    # comparable even on a busy machine.
                    cpu = " ".join(f"{min(r['cpu'] for r in v) * 1024 * MiB / total:.1f}/"
                                   f"{min(r['cpu'] for r in n) * 1024 * MiB / total:.1f}" for v, n in pairs)
                    # the governor's peak (governor.py), lowest-highest over the runs
                    spans = []
                    for v, n in pairs:
                        peaks = sorted(r["streams"] for r in v + n)
                        spans.append(f"{peaks[0]}-{peaks[-1]}" if peaks[0] != peaks[-1] else str(peaks[0]))
                    streams = " ".join(spans)
                print(f"{name:<12} {total / MiB:>5.0f} MiB" + "".join(f" {cells[c]:>17}" for c in columns)
                      + f" {rss:>14} {cpu:>15} {streams:>13}", flush=True)
            print(f"\nload average before the run: {load}; pack CPU s/GiB = user+sys seconds per "
                  "GiB (sha256/size-only, then the same with --direct-io)")
            print("direct: pack --direct-io writes with O_DIRECT, past the page cache; direct "
                  "read-back: the first read of those files afterwards (a model load pays it).")
            print(f"hf_transfer: {peers_note}")
            print(f"truss-transfer: {truss_note}")
            print(f"pack workers: at most {workers} streams; pack streams: the most that ran at "
                  "once, as the governor chose (lowest-highest over the runs).")
            print("Every figure excludes interpreter start-up. Source and destination share one disk.")
            print(f"free memory before each run: {args.memory} (--memory; see prepare_memory)")
        finally:
            server.terminate()
            server.wait()
            if created_bptr:
                try:
                    os.rmdir(os.path.dirname(TRUSS_MANIFEST))
                except OSError:
                    pass


if __name__ == "__main__":
    main()
