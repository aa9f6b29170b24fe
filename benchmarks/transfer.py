"""Benchmark the weight transfer engine against a local range server; prints a table.

    python benchmarks/transfer.py [--scale 1.0] [--workers N] [--keep]

Workloads (sizes x scale): one 512 MiB file, eight 64 MiB shards, two hundred 1 MiB files.
Each is fetched by pack with sha256 verification and with size-only checks (as the peers do),
by a naive single-stream client (one connection, files one after another, no hashing), and
by truss-transfer (the Rust downloader Truss ships, when a Python with the `truss_transfer`
package is found: --truss-python, else /opt/pack-truss-venv, /opt/truss-venv, this interpreter)
and compared with the machine's limit: a parallel ranged reader that discards the bytes
(loopback plus server cost) and a raw page-cache write of the same bytes.

truss-transfer reads its manifest only from fixed paths (/bptr/bptr-manifest.json,
/static-bptr/static-bptr-manifest.json); the benchmark writes /bptr/bptr-manifest.json (a Truss
bptr manifest whose http URLs point at the local server and whose file_name is under the work
directory), so that column needs write access to /bptr and is skipped, with the reason, when the
file already exists (never clobbered) or cannot be created. Its time is measured around
lazy_data_resolve() inside its own process (interpreter start-up excluded, as for pack); it
checks sizes only, so compare it with "pack size-only" and "pack sha256". The server runs in its own
process with sendfile, so it does not compete with the client for the GIL. pack runs in a
subprocess per measurement; its peak RSS comes from wait4. No assertions: figures only.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from packager.runtime.manifest import Digest, Entry, Manifest, Revision, Source

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


def run_pack(manifest: Manifest, base_url: str, work: str, workers: int | None) -> dict:
    path = os.path.join(work, "manifest.json")
    with open(path, "w") as fh:
        fh.write(manifest.to_json())
    dest, stats = os.path.join(work, "dest"), os.path.join(work, "stats.json")
    shutil.rmtree(dest, ignore_errors=True)
    cmd = [sys.executable, "-m", "packager.runtime.transfer", path, "--dest", dest,
           "--stats", stats, "--log-interval", "3600"]
    if workers:
        cmd += ["--workers", str(workers)]
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
    shutil.rmtree(dest, ignore_errors=True)
    return {"seconds": doc["seconds"], "wall": wall, "rss_mib": usage.ru_maxrss / 1024,
            "workers": doc["workers"], "cpu": usage.ru_utime + usage.ru_stime}


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


def run_wire_limit(files, base_url: str, threads: int = 8, chunk: int = 16 * MiB) -> float:
    """Parallel ranged GETs whose bytes are discarded: what loopback + server can deliver."""
    host_port = base_url.split("://", 1)[1]
    jobs = [(rel, start, min(size, start + chunk)) for rel, size, _ in files
            for start in range(0, size, chunk)]
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection(host_port)
        buf = memoryview(bytearray(MiB))
        while True:
            with lock:
                if not jobs:
                    break
                rel, start, end = jobs.pop()
            conn.request("GET", f"/{REPO}/resolve/{SHA}/{rel}",
                         headers={"Range": f"bytes={start}-{end - 1}"})
            resp = conn.getresponse()
            while resp.readinto(buf):
                pass
        conn.close()

    t0 = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.monotonic() - t0


def run_disk_limit(total: int, work: str) -> float:
    block = os.urandom(MiB)
    path = os.path.join(work, "disk")
    t0 = time.monotonic()
    with open(path, "wb") as fh:
        fh.writelines(block for _ in range(total // MiB))
    seconds = time.monotonic() - t0
    os.unlink(path)
    return seconds


def start_server(directory: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.range_server", directory],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    return proc, proc.stdout.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every file size")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs")
    parser.add_argument("--truss-python", default=None,
                        help="a Python with truss_transfer installed (default: look in /opt)")
    parser.add_argument("--no-truss", action="store_true", help="skip the truss-transfer column")
    args = parser.parse_args()
    truss_python, truss_note = (None, "--no-truss") if args.no_truss else find_truss(args.truss_python)
    created_bptr = truss_python is not None and not os.listdir(os.path.dirname(TRUSS_MANIFEST))
    workloads = [
        ("1 x 512 MiB", 1, int(512 * MiB * args.scale)),
        ("8 x 64 MiB", 8, int(64 * MiB * args.scale)),
        ("200 x 1 MiB", 200, max(4096, int(1 * MiB * args.scale))),
    ]
    with tempfile.TemporaryDirectory(prefix="pack-bench-") as work:
        served = os.path.join(work, "served")
        datasets = {name: make_files(served, f"w{i}", count, size)
                    for i, (name, count, size) in enumerate(workloads)}
        server, base_url = start_server(served)
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        try:
            print(f"cores: {os.cpu_count()}  server: {base_url} (separate process, sendfile)\n")
            header = (f"{'workload':<13} {'total':>8} {'pack sha256':>13} {'pack size-only':>15} "
                      f"{'naive 1-stream':>15} {'truss-transfer':>15} {'wire limit':>11} {'disk limit':>11} "
                      f"{'peak RSS':>9} {'CPU s/GiB':>10}")
            print(header)
            print("-" * len(header))
            for name, _, _ in workloads:
                files = datasets[name]
                total = sum(size for _, size, _ in files)
                def rate(seconds: float, total: int = total) -> str:
                    return f"{total / seconds / MiB:,.0f} MiB/s"

                def best(measure, repeat: int = args.repeat) -> float:
                    return min(measure() for _ in range(repeat))

                runs_v = [run_pack(manifest_for(files, True), base_url, work, args.workers)
                          for _ in range(args.repeat)]
                runs_n = [run_pack(manifest_for(files, False), base_url, work, args.workers)
                          for _ in range(args.repeat)]
                verified = min(r["seconds"] for r in runs_v)
                size_only = min(r["seconds"] for r in runs_n)
                naive = best(lambda files=files: run_naive(files, base_url, work))
                truss = rate(best(lambda files=files: run_truss(truss_python, files, base_url, work))) \
                    if truss_python else "skipped"
                wire = best(lambda files=files: run_wire_limit(files, base_url))
                disk = best(lambda total=total: run_disk_limit(total, work))
                rss = max(r["rss_mib"] for r in runs_v + runs_n)
                # CPU seconds per GiB (sha256 / size-only): comparable even on a busy machine.
                cpu_v = min(r["cpu"] for r in runs_v) * 1024 * MiB / total
                cpu_n = min(r["cpu"] for r in runs_n) * 1024 * MiB / total
                print(f"{name:<13} {total / MiB:>5.0f} MiB {rate(verified):>13} "
                      f"{rate(size_only):>15} {rate(naive):>15} {truss:>15} {rate(wire):>11} "
                      f"{rate(disk):>11} {rss:>5.0f} MiB {cpu_v:>4.1f}/{cpu_n:<4.1f}")
            print(f"\nload average before the run: {load}; CPU s/GiB = pack's user+sys time per "
                  "GiB (sha256 / size-only)")
            print(f"truss-transfer: {truss_note}")
            print(f"pack workers: {runs_v[0]['workers']}; pack figures exclude interpreter "
                  "start-up (seconds from the stats file); best of "
                  f"{args.repeat}. Dest and source share one disk.")
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
