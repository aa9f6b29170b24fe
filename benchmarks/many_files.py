"""Per-file overhead of the volume-mode prefetch with tens of thousands of small files.

    python benchmarks/many_files.py [--counts 1000,10000,30000] [--size 4096] [--repeat 3]

For each count N, N files of --size bytes are served by tests.fixtures.range_server (its own
process) and fetched the way a container fetches them: the in-image server's prefetch (the
runtime entrypoint with a volume-mode manifest, a node cache directory and its markers dir,
readiness at the end), measured from process start to the `prefetch_end` of its start-up
timeline. Three states per count:

* cold: empty node cache and empty destination (every file downloaded and verified);
* warm node: the cache holds every blob, the destination is empty (a new container on a node
  that served the model before: links from the cache, nothing downloaded);
* restart: destination, markers and cache all present (the same container started again).

The reference is one file of N x size bytes in the same states; the per-file overhead is
(T_N - T_1) / N. The `GET floor` row is 8 keep-alive connections GETting every file into
memory (no disk, no hashing, no process start): what the stand-in server and loopback cost on
this machine, under any client. Also timed: parsing the manifest and planning the bake-mode
weight layers.
No assertions: figures only.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from packager.plan.weight_layers import plan_weight_layers  # noqa: E402
from packager.runtime.manifest import Digest, Entry, Manifest, Revision, Source, parse  # noqa: E402
from tests.runtime.harness import Runtime, make_app  # noqa: E402

MODEL = """
class Model:
    def __init__(self, lazy_data_resolver):
        self._resolver = lazy_data_resolver

    def load(self):
        self._resolver.block_until_download_complete()

    def predict(self, x):
        return "ok"
"""


def make_files(directory: Path, count: int, size: int) -> list[tuple[str, int, str]]:
    """`count` distinct files (nested like a real repo) -> (url path, size, sha256)."""
    out = []
    seed = os.urandom(16)
    for i in range(count):
        rel = f"f/d{i % 100:02d}/file-{i:06d}.bin"
        data = (seed + i.to_bytes(8, "little")) * (size // 24 + 1)
        data = data[:size]
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append((f"/{rel}", size, hashlib.sha256(data).hexdigest()))
    return out


def manifest_for(base_url: str, files: list[tuple[str, int, str]]) -> Manifest:
    entries = [Entry(Source("https", base_url, base_url + path), Revision("", "bench"), size,
                     Digest("sha256", sha), f"/app/model_cache/bench{path}", "bench", None)
               for path, size, sha in files]
    return Manifest(tuple(sorted(entries, key=lambda e: e.destination)))


def start_server(directory: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fixtures.range_server", str(directory)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def prefetch_seconds(base: Path, manifest: Manifest, cache: Path) -> tuple[float, float]:
    """(process start -> prefetch_end, -> ready) of one runtime start on `base`'s app dir."""
    app = make_app(base, MODEL, manifest=manifest) if not (base / "app").exists() else None
    if app is None:
        from tests.runtime.harness import App

        app = App(base / "app", base / "state", base / "secrets", base / "dynamic")
    runtime = Runtime(app, PACK_CACHE_DIR=str(cache), PACK_PREFETCH_NICE="0")
    with runtime:
        runtime.wait_ready(1800)
        stages = runtime.timeline()["stages"]
        runtime.stop()
    return stages["prefetch_end"], stages["ready"]


def measure(base_url: str, files: list[tuple[str, int, str]], work: Path, repeat: int) -> dict[str, float]:
    manifest = manifest_for(base_url, files)
    results: dict[str, list[float]] = {"cold": [], "warm node": [], "restart": []}
    for _ in range(repeat):
        run = Path(tempfile.mkdtemp(dir=work))
        cache = run / "cache"
        results["cold"].append(prefetch_seconds(run / "one", manifest, cache)[0])
        results["restart"].append(prefetch_seconds(run / "one", manifest, cache)[0])
        results["warm node"].append(prefetch_seconds(run / "two", manifest, cache)[0])
        shutil.rmtree(run, ignore_errors=True)
    return {k: min(v) for k, v in results.items()}


def get_floor(base_url: str, files: list[tuple[str, int, str]], threads: int = 8) -> float:
    """Seconds for `threads` keep-alive connections to GET every file into memory (no disk, no
    hashing): what the local server and loopback cost, the floor under any client."""
    host = urlsplit(base_url)
    paths = queue.SimpleQueue()
    for path, _, _ in files:
        paths.put(path)

    def worker() -> None:
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        while True:
            try:
                path = paths.get_nowait()
            except queue.Empty:
                break
            conn.request("GET", path)
            conn.getresponse().read()
        conn.close()

    t0 = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.monotonic() - t0


def served_measure(directory: Path, count: int, size: int, work: Path, repeat: int) -> dict[str, float]:
    """`count` files of `size` bytes served from `directory` by their own server, measured."""
    files = make_files(directory, count, size)
    server, url = start_server(directory)
    try:
        result = measure(url, files, work, repeat)
        result["GET floor"] = min(get_floor(url, files) for _ in range(repeat))
        return result
    finally:
        server.terminate()
        server.wait()


def planning_seconds(count: int) -> tuple[float, float]:
    """(parse a manifest of `count` entries, plan bake-mode weight layers for it)."""
    entries = [Entry(Source("hf", "org/m", f"d{i % 100}/f{i}.json"), Revision("main", "a" * 40), 4096,
                     Digest("sha256", hashlib.sha256(str(i).encode()).hexdigest()),
                     f"/root/.cache/huggingface/hub/models--org--m/snapshots/{'a' * 40}/d{i % 100}/f{i}.json")
               for i in range(count)]
    text = Manifest(tuple(entries)).to_json()
    t0 = time.perf_counter()
    manifest = parse(text)
    t1 = time.perf_counter()
    plan_weight_layers(manifest)
    return t1 - t0, time.perf_counter() - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1000,10000", help="comma-separated file counts")
    parser.add_argument("--size", type=int, default=4096, help="bytes per file")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    work = Path(tempfile.mkdtemp(prefix="pack-many-files-"))
    rows = []
    try:
        for count in counts:
            served = work / f"served-{count}"
            many_t, one_t = (served_measure(served / name, files, size, work, args.repeat)
                             for name, files, size in (("many", count, args.size), ("one", 1, count * args.size)))
            parse_s, plan_s = planning_seconds(count)
            rows.append((count, many_t, one_t, parse_s, plan_s))
            shutil.rmtree(served, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"prefetch of N files of {args.size} bytes vs one file of the same total "
          f"(process start -> prefetch_end, best of {args.repeat}; per-file = (T_N - T_1) / N)")
    print(f"{'files':>7} | {'state':<9} | {'N files s':>9} | {'1 file s':>8} | {'per file ms':>11} | "
          f"{'files/s':>8}")
    for count, many_t, one_t, _, _ in rows:
        for state in ("cold", "warm node", "restart", "GET floor"):
            per_file = (many_t[state] - one_t[state]) / count * 1000
            print(f"{count:>7} | {state:<9} | {many_t[state]:>9.2f} | {one_t[state]:>8.2f} | "
                  f"{per_file:>11.3f} | {count / many_t[state]:>8.0f}")
    print()
    print(f"{'entries':>7} | {'parse manifest s':>16} | {'plan bake layers s':>18}")
    for count, _, _, parse_s, plan_s in rows:
        print(f"{count:>7} | {parse_s:>16.3f} | {plan_s:>18.3f}")
    print(json.dumps({"rows": [{"files": c, "many": m, "one": o, "parse_s": p, "plan_s": q}
                               for c, m, o, p, q in rows]}))


if __name__ == "__main__":
    main()
