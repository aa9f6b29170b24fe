"""Benchmark the weight transfer engine against a local range server; prints a table.

    python benchmarks/transfer.py [--scale 1.0] [--workers N] [--keep]

Workloads (sizes x scale): one 512 MiB file, eight 64 MiB shards, two hundred 1 MiB files.
Each is fetched by pack with sha256 verification and with size-only checks (as the peers do),
by a naive single-stream client (one connection, files one after another, no hashing), and
compared with the machine's limit: a parallel ranged reader that discards the bytes (loopback
plus server cost) and a raw page-cache write of the same bytes. The server runs in its own
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
    """One connection at a time, whole files in order, no hashing (urllib, like a plain script)."""
    dest = os.path.join(work, "naive")
    os.makedirs(dest, exist_ok=True)
    t0 = time.monotonic()
    for rel, _, _ in files:
        url = f"{base_url}/{REPO}/resolve/{SHA}/{rel}"
        with urllib.request.urlopen(url) as resp, open(os.path.join(dest, "f"), "wb") as out:
            shutil.copyfileobj(resp, out, MiB)
    seconds = time.monotonic() - t0
    shutil.rmtree(dest, ignore_errors=True)
    return seconds


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
    args = parser.parse_args()
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
                      f"{'naive 1-stream':>15} {'wire limit':>11} {'disk limit':>11} "
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
                wire = best(lambda files=files: run_wire_limit(files, base_url))
                disk = best(lambda total=total: run_disk_limit(total, work))
                rss = max(r["rss_mib"] for r in runs_v + runs_n)
                # CPU seconds per GiB (sha256 / size-only): comparable even on a busy machine.
                cpu_v = min(r["cpu"] for r in runs_v) * 1024 * MiB / total
                cpu_n = min(r["cpu"] for r in runs_n) * 1024 * MiB / total
                print(f"{name:<13} {total / MiB:>5.0f} MiB {rate(verified):>13} "
                      f"{rate(size_only):>15} {rate(naive):>15} {rate(wire):>11} "
                      f"{rate(disk):>11} {rss:>5.0f} MiB {cpu_v:>4.1f}/{cpu_n:<4.1f}")
            print(f"\nload average before the run: {load}; CPU s/GiB = pack's user+sys time per "
                  "GiB (sha256 / size-only)")
            print(f"pack workers: {runs_v[0]['workers']}; pack figures exclude interpreter "
                  "start-up (seconds from the stats file); best of "
                  f"{args.repeat}. Dest and source share one disk.")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
