"""Cold start of a built image: pack's overlapped start against download-then-import; prints a table.

    python benchmarks/coldstart.py [--size-mib 1024] [--files 4] [--import-seconds 3]
                                   [--import-kind cpu|cpu-process|sleep|all] [--repeat 3]
    python benchmarks/coldstart.py --size-mib 64 --import-seconds 1 --repeat 1   # CI-sized
    python benchmarks/coldstart.py --samples [--repeat 3]   # the sample trusses, cold and warm

Needs the Docker engine and base image of scripts/setup-dev.sh. The model (a temporary truss,
built once with the offline base image, removed at the end with its volumes):

* model.py simulates a slow library import at module import. Default (cpu): a pure-Python busy
  loop in the importing thread that runs until that thread has used --import-seconds of CPU time
  (time.thread_time). CPU work, not time.sleep, because `import torch` is CPU work done with the
  GIL held (unmarshalling, module bodies, dlopen) that competes with the prefetch (HTTP, sha256,
  writes) for the same cores; a fixed amount of CPU work gets slower when the download takes the
  cores (or, were the prefetch a thread of the server, the GIL) from it, which a sleep would
  hide. pack runs the prefetch in its own process (prefetch_worker), so the GIL column should
  stay near 0. For comparison: cpu-process runs the same loop in a child process of the model
  (CPU contention only), sleep is contention-free. `--import-kind all` runs all three on one image.
* model_cache (use_volume: true) declares --size-mib of weights in --files files from a MockHub
  stand-in (tests/fixtures/hf_hub.py) on 127.0.0.1; the bytes are generated deterministically
  (random.Random seeded per file) and served from memory by this process, which therefore shares
  the machine's cores with the container (a real hub would not).
* load() calls lazy_data_resolver.block_until_download_complete(), then reads and sha256-hashes
  every file (two threads) and checks the hashes: that is the 'load'.

Two orders, from the same image (BENCH_ORDER in the container's environment):

* overlapped: pack as shipped; the runtime starts the prefetch before importing model.py, so the
  download runs under the import.
* sequential: model.py calls block_until_download_complete() as its very first statement, before
  the slow import, so the import waits for the whole download (what a start command like
  `truss-transfer-cli && python server.py` does). The resolver is not passed to module code, so
  model.py finds the runtime's LazyDataResolver instance with gc (the one load() later receives);
  its wait is recorded in the timeline's blocked time, so the hidden time drops to ~0.

Each is run cold (a new, empty weight-cache volume) and then warm (a second container on the same
volume: the content cache at /var/lib/pack/cache, so nothing is downloaded; the volume is another
filesystem than /app, so each /app/model_cache file is placed as a symlink to its verified blob,
pinned for the server's lifetime: no byte is copied; 'links' below counts them). Containers run
on the host network, like `pack run`, with HF_ENDPOINT pointing at the stand-in. Runs of the two
orders alternate; --repeat of each.

Columns (medians; 'best of' lines give the least disturbed run):
    start->ready   host clock, from `docker run` (create + start) to the first readiness 200
                   (polled every 50 ms)
    ready          the runtime's timeline: process start -> ready
    download       timeline prefetch_end - prefetch_start (fetch, verify, place)
    import         wall time of the simulated import, measured by model.py (excludes the
                   sequential variant's wait)
    load           wall time of the read + hash in load(), after block_until_download_complete
    bound          1.15 x (max(download, import) + load), from the same row's stages
    hidden/blocked the timeline's download time hidden behind start-up / spent blocked
    MiB fetched    payload bytes the stand-in served during the run
    CPU s          from `docker run` to ready: the container's cgroup / this process (the
                   stand-in) / everything else on the machine (dockerd, other jobs: the noise)
    import split   the simulated import's wall time on a CPU / runnable but waiting for a CPU /
                   neither, which for a busy loop without I/O means waiting for the GIL (Linux
                   schedstat of the importing thread; of the child for cpu-process)

The summary compares the overlapped cold 'ready' with the bound computed from the sequential
cold run's stages (download and import measured alone there). No assertions: figures only.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import re
import socket
import statistics
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MiB = 1024 * 1024
REPO_ID = "bench/coldstart-weights"
VOLUME_FOLDER = "weights"
BASE_IMAGE = os.environ.get("PACK_BASE_IMAGE", "pack-base:bookworm-py311")

MODEL_PY = '''\
"""Cold-start benchmark model: simulated slow import, weights from the volume, hashing load."""

import json
import os
import time


def process_age():
    """Seconds since this process started: the clock of pack's start-up timeline (/proc)."""
    try:
        with open("/proc/self/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _now():
    # process_age() has clock-tick resolution; anchor it once, then use the monotonic clock.
    return _AGE0 + (time.monotonic() - _MONO0)


_AGE0, _MONO0 = process_age(), time.monotonic()
MARKS = {"module_start": _now()}
ORDER = os.environ.get("BENCH_ORDER", "overlapped")
IMPORT_KIND = os.environ.get("BENCH_IMPORT_KIND", "cpu")
IMPORT_SECONDS = float(os.environ.get("BENCH_IMPORT_SECONDS", "3"))

if ORDER == "sequential":
    # Download first, import after: wait for the runtime's prefetch before the slow import.
    import gc

    _resolver = next(o for o in gc.get_objects() if type(o).__name__ == "LazyDataResolver")
    _resolver.block_until_download_complete()
MARKS["import_start"] = _now()


# The simulated import. It ends with the thread's scheduler statistics over its run (Linux
# /proc/thread-self/schedstat: ns on a CPU, ns runnable but waiting for a CPU): the rest of its wall
# time it was off the CPU without being runnable, which for a busy loop that does no I/O can only
# be waiting for the GIL.
BUSY = """
import json, time


def schedstat():
    try:
        with open("/proc/thread-self/schedstat") as fh:
            on_cpu, waiting, _ = fh.read().split()
        return int(on_cpu) / 1e9, int(waiting) / 1e9
    except (OSError, ValueError):
        return float("nan"), float("nan")


wall0, (cpu0, runq0) = time.monotonic(), schedstat()
end, x = time.thread_time() + SECONDS, 0
while time.thread_time() < end:
    for i in range(20000):
        x += i * i
cpu1, runq1 = schedstat()
SPLIT = {"wall": time.monotonic() - wall0, "cpu": cpu1 - cpu0, "runq": runq1 - runq0}
if __name__ == "__main__":
    print(json.dumps(SPLIT))
"""


def _simulated_import(seconds, kind):
    code = BUSY.replace("SECONDS", repr(seconds))
    if kind == "sleep":
        t = time.monotonic()
        time.sleep(seconds)
        return {"wall": time.monotonic() - t, "cpu": 0.0, "runq": 0.0}
    if kind == "cpu-process":  # the same CPU work in a child process: no GIL shared with pack
        import json
        import subprocess
        import sys

        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        return json.loads(out.stdout)
    # CPU work, like `import torch`: until this thread has used `seconds` of CPU time
    scope = {"__name__": "busy"}
    exec(code, scope)
    return scope["SPLIT"]


IMPORT_SPLIT = _simulated_import(IMPORT_SECONDS, IMPORT_KIND)
MARKS["import_end"] = _now()
CPU = {}


def _sha256(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        while True:
            chunk = fh.read(8 << 20)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)


class Model:
    def __init__(self, **kwargs):
        MARKS["init_start"] = _now()
        self._resolver = kwargs["lazy_data_resolver"]
        with open(os.path.join(str(kwargs["data_dir"]), "expected.json")) as fh:
            self._expected = json.load(fh)
        self._folder = kwargs["config"]["model_cache"][0]["volume_folder"]
        self._ok = None

    def load(self):
        from concurrent.futures import ThreadPoolExecutor

        MARKS["load_start"] = _now()
        root = self._resolver.block_until_download_complete()
        MARKS["load_unblocked"] = _now()
        paths = [os.path.join(root, self._folder, name) for name in sorted(self._expected)]
        with ThreadPoolExecutor(2) as pool:  # hashlib releases the GIL: two cores, two files
            digests = list(pool.map(_sha256, paths))
        self._ok = digests == [self._expected[name] for name in sorted(self._expected)]
        CPU["symlinked_files"] = sum(os.path.islink(p) for p in paths)
        MARKS["load_end"] = _now()
        CPU["process_at_load_end"] = time.process_time()
        if not self._ok:
            raise RuntimeError("weights do not match their sha256")

    def predict(self, model_input):
        return {"marks": MARKS, "cpu": CPU, "import_split": IMPORT_SPLIT, "ok": self._ok,
                "order": ORDER, "import_kind": IMPORT_KIND}
'''


def config_yaml(model_name: str) -> str:
    return textwrap.dedent(f"""\
        model_name: {model_name}
        python_version: py311
        resources:
          cpu: "2"
          memory: 4Gi
        model_cache:
          - repo_id: {REPO_ID}
            revision: main
            use_volume: true
            volume_folder: {VOLUME_FOLDER}
        """)


def make_weights(size_mib: int, count: int) -> dict[str, bytes]:
    """`count` files summing to size_mib MiB; deterministic bytes (seeded per file)."""
    total = size_mib * MiB
    sizes = [total // count + (1 if i < total % count else 0) for i in range(count)]
    return {f"model-{i + 1:05d}-of-{count:05d}.safetensors": deterministic_bytes(f"coldstart-{i}", size)
            for i, size in enumerate(sizes)}


def deterministic_bytes(seed: str, size: int) -> bytes:
    """`size` pseudo-random bytes, the same for the same seed (randbytes takes < 256 MiB a call)."""
    rng, out = random.Random(seed), bytearray()
    while len(out) < size:
        out += rng.randbytes(min(64 * MiB, size - len(out)))
    return bytes(out)


def write_truss(root: Path, model_name: str, expected: dict[str, str]) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "config.yaml").write_text(config_yaml(model_name))
    (root / "model" / "model.py").write_text(MODEL_PY)
    (root / "data" / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True))
    return root


# --- one container start ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def timeline_doc(port: int) -> dict:
    """The runtime's whole timeline document: the JSON comment line of /metrics."""
    _, body = http_get(port, "/metrics")
    for line in body.decode("utf-8", "replace").splitlines():
        match = re.match(r"^# pack_startup_timeline (\{.*\})$", line)
        if match:
            return json.loads(match.group(1))
    raise RuntimeError("no pack_startup_timeline line in /metrics")


def system_busy_seconds() -> float:
    """CPU-seconds all cores of this machine spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def container_cpu_seconds(container_id: str) -> float | None:
    """CPU-seconds of every process of the container so far, from its cgroup (v1 or v2)."""
    for path in (f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage",
                 f"/sys/fs/cgroup/cpu,cpuacct/docker/{container_id}/cpuacct.usage"):
        try:
            with open(path) as fh:
                return int(fh.read()) / 1e9
        except OSError:
            pass
    for path in (f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat",
                 f"/sys/fs/cgroup/docker/{container_id}/cpu.stat"):
        try:
            with open(path) as fh:
                for line in fh:
                    if line.startswith("usage_usec "):
                        return int(line.split()[1]) / 1e6
        except OSError:
            pass
    return None


def start_until_ready(engine, image: str, volume: str, env: dict[str, str], hub, timeout: float,
                      name_prefix: str = "pack-bench-coldstart") -> dict:
    """Start a container and poll readiness; the caller removes result["container"]."""
    from packager.render.context import RUNTIME_CACHE_DIR
    from packager.runner import READY_PATH, source_endpoints

    port = free_port()
    name = f"{name_prefix}-{uuid.uuid4().hex[:8]}"
    hub.reset_stats()
    cpu0 = sum(os.times()[:2])  # this process serves the stand-in: its CPU is the hub's
    busy0 = system_busy_seconds()
    t0 = time.monotonic()
    from packager.engine import RunRequest

    container = engine.run(RunRequest(image, port=port, env={**source_endpoints(), **env}, name=name,
                                      volumes={volume: RUNTIME_CACHE_DIR}))
    try:
        # Every probe costs the loading server the GIL for a moment and every status check costs
        # dockerd a core for a moment: probe every 50 ms (the timeline's `ready` is exact
        # anyway; start->ready gets +-25 ms) and ask dockerd about the container twice a second.
        for probe in itertools.count():
            try:
                if http_get(port, READY_PATH, timeout=2.0)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > timeout or (
                    probe % 10 == 9 and container.status() not in ("running", "created")):
                raise RuntimeError(f"container {name} not ready ({container.status()}):\n"
                                   + container.logs(tail=40))
            time.sleep(0.05)
        start_to_ready = time.monotonic() - t0
        hub_cpu = sum(os.times()[:2]) - cpu0
        busy = system_busy_seconds() - busy0
    except BaseException:
        container.remove()
        raise
    return {"container": container, "port": port, "start_to_ready": start_to_ready,
            "hub_cpu": hub_cpu, "busy": busy, "container_cpu": container_cpu_seconds(container.id)}


def remove_quietly(client, volumes: list[str], images: list[str]) -> None:
    """Best-effort removal of what a benchmark created, after a failure too."""
    for volume in volumes:
        try:
            client.api.remove_volume(volume, force=True)
        except Exception:  # noqa: BLE001 - best effort
            pass
    for image in images:
        try:
            client.api.remove_image(image)
        except Exception:  # noqa: BLE001
            pass


def post_json(port: int, path: str, payload: object, timeout: float = 30.0) -> tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=json.dumps(payload).encode(),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def launch(engine, image: str, volume: str, env: dict[str, str], hub, timeout: float) -> dict:
    """Start a container, poll readiness, collect the timeline and the model's own marks."""
    run = start_until_ready(engine, image, volume, env, hub, timeout)
    container = run.pop("container")
    try:
        run["timeline"] = timeline_doc(run["port"])
        run["model"] = post_json(run["port"], "/v1/models/model:predict", {})[1]
    finally:
        container.remove()
    run["fetched_bytes"] = hub.file_bytes()
    return run


def figures(run: dict) -> dict:
    stages = run["timeline"]["stages"]
    download = run["timeline"].get("download") or {}
    marks = run["model"]["marks"]
    split = run["model"]["import_split"]
    d = download.get("wall_seconds") or 0.0
    i = marks["import_end"] - marks["import_start"]
    load = marks["load_end"] - marks["load_unblocked"]
    return {
        "start_to_ready": run["start_to_ready"], "ready": stages["ready"], "download": d,
        "import": i, "load": load, "bound": 1.15 * (max(d, i) + load),
        "hidden": download.get("hidden_seconds") or 0.0, "blocked": download.get("blocked_seconds") or 0.0,
        "fetched_mib": run["fetched_bytes"] / MiB, "stages": stages,
        "ok": run["model"]["ok"], "cache_hits": download.get("cache_hits"),
        "links": run["model"]["cpu"].get("symlinked_files"),
        "cpu_container": run["container_cpu"] if run["container_cpu"] is not None else float("nan"),
        "cpu_hub": run["hub_cpu"],
        # The import's wall time split: on a CPU / runnable, waiting for a CPU / neither (the GIL)
        "imp_cpu": split["cpu"], "imp_runq": split["runq"],
        "imp_off": split["wall"] - split["cpu"] - split["runq"] if run["model"]["import_kind"] != "sleep" else 0.0,
        # Everything else this machine ran meanwhile (other containers, test suites): the noise.
        "cpu_other": run["busy"] - run["hub_cpu"] - (run["container_cpu"] or 0.0),
    }


def median_of(rows: list[dict]) -> dict:
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return {**rows[0], **{k: statistics.median(r[k] for r in rows) for k in keys}}


# --- main ------------------------------------------------------------------------------------
KINDS = ("cpu", "cpu-process", "sleep")


def report(kind: str, runs: dict[tuple[str, str], list[dict]], args: argparse.Namespace) -> None:
    print()
    print(f"== import kind: {kind} == weights {args.size_mib} MiB in {args.files} files; simulated "
          f"import {args.import_seconds:g} s; {os.cpu_count()} CPUs; median of {args.repeat} run(s); seconds")
    header = (f"{'variant':<11} {'cache':<5} {'start->ready':>12} {'ready':>6} {'download':>8} "
              f"{'import':>6} {'load':>5} {'bound':>6} {'hidden':>6} {'blocked':>7} {'MiB fetched':>11} "
              f"{'CPU s container/hub/other':>25} {'import cpu/runq/GIL':>19}")
    print(header)
    print("-" * len(header))
    med = {key: median_of(rows) for key, rows in runs.items()}
    for order in ("overlapped", "sequential"):
        for cache in ("cold", "warm"):
            r = med[(order, cache)]
            cpu = f"{r['cpu_container']:.2f}/{r['cpu_hub']:.2f}/{r['cpu_other']:.2f}"
            split = f"{r['imp_cpu']:.2f}/{r['imp_runq']:.2f}/{r['imp_off']:.2f}"
            print(f"{order:<11} {cache:<5} {r['start_to_ready']:>12.2f} {r['ready']:>6.2f} "
                  f"{r['download']:>8.2f} {r['import']:>6.2f} {r['load']:>5.2f} {r['bound']:>6.2f} "
                  f"{r['hidden']:>6.2f} {r['blocked']:>7.2f} {r['fetched_mib']:>11.1f} {cpu:>25} {split:>19}")
    seq, ovl = med[("sequential", "cold")], med[("overlapped", "cold")]
    standalone = 1.15 * (max(seq["download"], seq["import"]) + seq["load"])
    verdict = "within" if ovl["ready"] <= standalone else f"OVER by {ovl['ready'] / standalone * 100 - 100:.0f}%"
    print(f"overlapped cold: ready {ovl['ready']:.2f} s (timeline; {ovl['start_to_ready']:.2f} s from "
          f"docker run) vs bound {standalone:.2f} s = 1.15 x (max(download {seq['download']:.2f}, import "
          f"{seq['import']:.2f}) + load {seq['load']:.2f}), stages measured alone in the sequential run: {verdict}")
    best = {key: min(r["ready"] for r in rows) for key, rows in runs.items()}
    print(f"best of {args.repeat} (least disturbed): overlapped cold {best[('overlapped', 'cold')]:.2f} s, "
          f"sequential cold {best[('sequential', 'cold')]:.2f} s, overlapped warm "
          f"{best[('overlapped', 'warm')]:.2f} s, sequential warm {best[('sequential', 'warm')]:.2f} s")
    print(f"sequential cold: ready {seq['ready']:.2f} s; overlapped - sequential = "
          f"{ovl['ready'] - seq['ready']:+.2f} s ({(ovl['ready'] / seq['ready'] - 1) * 100:+.0f}%)")
    ovw, sqw = med[("overlapped", "warm")], med[("sequential", "warm")]
    hits = sorted({r["cache_hits"] for key in runs if key[1] == "warm" for r in runs[key]})
    links = sorted({r["links"] for rows in runs.values() for r in rows})
    print(f"warm (second container, same cache volume): ready {ovw['ready']:.2f} s overlapped, "
          f"{sqw['ready']:.2f} s sequential; {ovw['fetched_mib'] + sqw['fetched_mib']:.1f} MiB fetched "
          f"from the stand-in; cache hits per run {hits} of {args.files}; /app/model_cache files "
          f"that are symlinks into the cache volume (no copy) per run {links}")
    for order in ("overlapped", "sequential"):
        rows = sorted(runs[(order, "cold")], key=lambda r: r["ready"])
        pick = rows[(len(rows) - 1) // 2]
        print(f"stages, {order} cold (ready {pick['ready']:.2f} s): "
              + "  ".join(f"{k}={v:.2f}" for k, v in pick["stages"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="total weights (default 1024)")
    parser.add_argument("--files", type=int, default=4, help="number of weight files (default 4)")
    parser.add_argument("--import-seconds", type=float, default=3.0, help="simulated import (default 3)")
    parser.add_argument("--import-kind", default="cpu",
                        help="comma-separated, of: cpu (busy loop for N CPU seconds in the importing "
                             "thread; default), cpu-process (the same in a child process: no GIL shared "
                             "with the runtime), sleep (time.sleep(N)), all")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; medians are shown (default 3)")
    parser.add_argument("--base-image", default=BASE_IMAGE)
    parser.add_argument("--timeout", type=float, default=300.0, help="readiness timeout per start")
    parser.add_argument("--stages", action="store_true", help="also print every run's timeline stages")
    parser.add_argument("--samples", action="store_true",
                        help="measure the sample trusses instead (coldstart_samples.py)")
    args = parser.parse_args()
    if args.samples:
        import coldstart_samples

        return coldstart_samples.main(args)
    kinds = list(KINDS) if args.import_kind == "all" else args.import_kind.split(",")
    if bad := [k for k in kinds if k not in KINDS]:
        parser.error(f"unknown --import-kind {bad}; choose from {', '.join(KINDS)} or all")

    from packager import api
    from packager.engine import detect_engine, open_engine
    from packager.plan.model import BuildOptions
    from tests.fixtures.hf_hub import MockHub

    info = detect_engine()
    if not info.available:
        raise SystemExit(f"no Docker engine: {info.reason} (run scripts/setup-dev.sh)")
    engine = open_engine(info)
    client = __import__("docker").from_env()

    print(f"generating {args.size_mib} MiB in {args.files} files ...", flush=True)
    t = time.monotonic()
    weights = make_weights(args.size_mib, args.files)
    tag = f"pack-bench-coldstart:{uuid.uuid4().hex[:8]}"
    volumes: list[str] = []
    results: dict[str, dict[tuple[str, str], list[dict]]] = {}
    with MockHub() as hub, tempfile.TemporaryDirectory(prefix="pack-bench-coldstart-") as work:
        repo = hub.add_repo(REPO_ID)
        repo.commit(weights)
        expected = {path: blob.sha256 for path, blob in repo.resolve("main").files.items()}
        del weights
        print(f"  {time.monotonic() - t:.1f} s; stand-in hub at {hub.url}", flush=True)
        os.environ["HF_ENDPOINT"] = hub.url  # the lock, and the containers (runner.source_endpoints)
        os.environ["XDG_CACHE_HOME"] = os.path.join(work, "xdg")  # rendered contexts
        model_name = f"coldstart-bench-{uuid.uuid4().hex[:6]}"
        truss = write_truss(Path(work) / "truss", model_name, expected)
        t = time.monotonic()
        result = api.build(truss, BuildOptions(base_image=args.base_image), tag=tag)
        print(f"built {tag} in {time.monotonic() - t:.1f} s (image {result.image.id[:19]})", flush=True)
        try:
            for kind in kinds:
                runs = results.setdefault(kind, {})
                for rep in range(args.repeat):
                    for order in ("overlapped", "sequential"):
                        volume = f"pack-bench-coldstart-{uuid.uuid4().hex[:10]}"  # empty: cold
                        volumes.append(volume)
                        env = {"BENCH_ORDER": order, "BENCH_IMPORT_KIND": kind,
                               "BENCH_IMPORT_SECONDS": str(args.import_seconds)}
                        for cache in ("cold", "warm"):
                            run = figures(launch(engine, tag, volume, env, hub, args.timeout))
                            runs.setdefault((order, cache), []).append(run)
                            print(f"  {kind} run {rep + 1}/{args.repeat} {order:<10} {cache}: ready "
                                  f"{run['ready']:.2f} s, download {run['download']:.2f} s, import "
                                  f"{run['import']:.2f} s, CPU-s other processes {run['cpu_other']:.2f} "
                                  f"(hashes ok: {run['ok']})", flush=True)
                            if args.stages:
                                print("    stages " + json.dumps(run["stages"]), flush=True)
                        client.api.remove_volume(volume, force=True)
                        volumes.remove(volume)
        finally:
            remove_quietly(client, volumes, [tag])

    for kind, runs in results.items():
        report(kind, runs, args)
    print()
    print("ready = the runtime's timeline, process start -> ready; start->ready adds `docker run`. "
          "CPU s, from `docker run` to ready: the container (cgroup) / this process (the stand-in) / "
          f"everything else on the machine (noise); {os.cpu_count()} cores give {os.cpu_count()} "
          "CPU-seconds per second. import cpu/runq/GIL: the simulated import's wall time on a CPU / "
          "runnable but waiting for a CPU (other threads and processes) / neither, which for a busy "
          "loop without I/O is waiting for the GIL (Linux schedstat of the importing thread; for "
          "cpu-process, of the child).")


if __name__ == "__main__":
    main()
