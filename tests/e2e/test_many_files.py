"""A real-shaped repo baked into an image: 2,000 small files plus 150 shards.

One layer per file would stop the overlay storage driver near 125 layers ("max depth
exceeded"). The plan bounds the weight layers whatever the file count; here the shards count as
"large" (large_file_bytes lowered to their size class) so both halves of the grouping are
exercised and the bound is actually reached. Then a new revision changes one shard: the rebuild
re-runs one download stage, fetches that one file from the hub, and changes one weight layer.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from packager import api, runner
from packager.builder import BuildResult
from packager.engine import StepEvent
from packager.plan.model import BuildOptions
from tests.e2e.conftest import BASE_IMAGE, HF_HUB_CACHE, Hub, Resources, exec_in, start, steps_from_events
from tests.fixtures.docker_env import unique
from tests.render.dockerfile import final_stage, index_of, parse

pytestmark = pytest.mark.docker

SMALL_FILES = 2000
SHARDS = 150
SHARD_BYTES = 8 * 1024
MAX_LAYERS = 64

MODEL = '''\
import os


class Model:
    def __init__(self, config=None, **kwargs):
        self._repo = config["model_cache"][0]["repo_id"]
        self._count = 0

    def load(self):
        root = os.path.expanduser("~root/.cache/huggingface/hub/models--" + self._repo.replace("/", "--"))
        sha = open(os.path.join(root, "refs", "main")).read().strip()
        self._count = sum(len(files) for _, _, files in os.walk(os.path.join(root, "snapshots", sha)))

    def predict(self, model_input):
        return {"files": self._count}
'''

# Hashes every file of the baked snapshot inside the container (symlinks to blobs followed).
HASH_SNAPSHOT = (
    "import hashlib, json, os, sys\n"
    "root = sys.argv[1]\n"
    "out = {}\n"
    "for d, _, files in os.walk(root):\n"
    "    for f in files:\n"
    "        p = os.path.join(d, f)\n"
    "        out[os.path.relpath(p, root)] = hashlib.sha256(open(p, 'rb').read()).hexdigest()\n"
    "print(json.dumps(out))\n"
)


def repo_files(marker: str) -> dict[str, bytes]:
    """Tokenizer/config-like small files in nested folders and safetensors shards; the marker
    makes every byte new to the engine's download cache."""
    files: dict[str, bytes] = {}
    for i in range(SMALL_FILES):
        files[f"assets/group-{i % 40:02d}/item-{i:04d}.json"] = json.dumps({"i": i, "m": marker}).encode()
    for i in range(1, SHARDS + 1):
        files[f"model-{i:05d}-of-{SHARDS:05d}.safetensors"] = (f"{marker}:{i}:".encode() * SHARD_BYTES)[:SHARD_BYTES]
    return files


@dataclass
class Baked:
    repo_id: str
    truss: Path
    files: dict[str, bytes]
    first: BuildResult
    first_bytes: int
    first_fetches: Counter[str]  # file requests per path


def options() -> BuildOptions:
    return BuildOptions(base_image=BASE_IMAGE, large_file_bytes=SHARD_BYTES, max_weight_layers=MAX_LAYERS)


def weight_layer_count(client: Any, image_id: str) -> int:
    """Layers of the image that hold baked weights: the COPYs from the download stages and the
    ADD of the snapshot links."""
    history = client.images.get(image_id).history()
    return sum(1 for h in history if "/opt/pack-weights/" in (h.get("CreatedBy") or "")
               or "links.tar" in (h.get("CreatedBy") or ""))


@pytest.fixture(scope="module")
def baked(tmp_path_factory: pytest.TempPathFactory, hub: Hub, resources: Resources) -> Iterator[Baked]:
    repo_id = f"e2e-many/{unique('repo')}"
    files = repo_files(os.urandom(8).hex())
    hub.hub.add_repo(repo_id).commit(files)
    truss = tmp_path_factory.mktemp("many") / "truss"
    (truss / "model").mkdir(parents=True)
    (truss / "model" / "model.py").write_text(MODEL)
    (truss / "config.yaml").write_text(
        "model_name: e2e-many-files\npython_version: py311\nrequirements: []\n"
        f"model_cache:\n  - repo_id: {repo_id}\n    revision: main\n    use_volume: false\n")
    hub.hub.reset_stats()
    first = api.build(truss, options(), tag=resources.tag("many-files"))
    fetches = Counter(r.path for r in hub.hub.settled() if r.file_bytes)
    yield Baked(repo_id, truss, files, first, hub.hub.file_bytes(), fetches)


def test_plan_is_bounded_and_reported(baked: Baked) -> None:
    layers = baked.first.plan.weight_layers
    assert len(baked.first.plan.manifest.entries) == SMALL_FILES + SHARDS
    assert layers.max_layers == MAX_LAYERS
    assert len(layers.layers) <= MAX_LAYERS
    assert sum(layer.files for layer in layers.layers) == SMALL_FILES + SHARDS
    # The shards outnumber the layers left for large files, so they are hashed into those layers
    # (a few stay empty), and the small files fill their buckets.
    assert MAX_LAYERS * 3 // 4 < len(layers.layers) <= MAX_LAYERS
    assert len([layer for layer in layers.layers if layer.name.startswith("pack-weights-s")]) == 8  # 2000 / 256
    total = sum(len(v) for v in baked.files.values())
    if baked.first.image.retried:
        # BuildKit's transient race made the engine run the build again: a download step it cut
        # short fetches the files it had in flight a second time (the engine says so).
        assert baked.first_bytes >= total, baked.first.image.retried
    else:  # every file fetched once
        again = sorted(path for path, n in baked.first_fetches.items() if n > 1)
        assert baked.first_bytes == total, f"{len(again)} paths fetched more than once: {again[:10]}"


def test_image_holds_every_file_and_no_more_layers_than_the_bound(
        baked: Baked, hub: Hub, resources: Resources, docker_client: Any) -> None:
    image = docker_client.images.get(baked.first.image.id)
    assert weight_layer_count(docker_client, image.id) == baked.first.plan.weight_layers.image_layers
    assert baked.first.plan.weight_layers.image_layers <= MAX_LAYERS + 1  # + the links layer
    assert len(image.attrs["RootFS"]["Layers"]) < 110  # well under the overlay driver's ~125
    running = start(baked.first, baked.first.plan, resources, timeout=300)
    try:
        assert runner.predict(running.url, {}, timeout=60) == {"files": SMALL_FILES + SHARDS}
        sha = hub.hub.repos[baked.repo_id].head()
        snapshot = f"{HF_HUB_CACHE}/models--{baked.repo_id.replace('/', '--')}/snapshots/{sha}"
        inside = json.loads(exec_in(docker_client, running.container.name,
                                    ["python3", "-c", HASH_SNAPSHOT, snapshot]))
        assert inside == {path: hashlib.sha256(data).hexdigest() for path, data in baked.files.items()}
    finally:
        running.container.remove()


def test_new_revision_refetches_and_relayers_one_group(
        baked: Baked, hub: Hub, resources: Resources, docker_client: Any) -> None:
    changed = "model-00042-of-00150.safetensors"
    new_bytes = os.urandom(SHARD_BYTES)
    hub.hub.repos[baked.repo_id].commit({changed: new_bytes}, inherit=True)
    api.lock(baked.truss)  # the branch moved: pin the new commit
    events: list[StepEvent] = []
    hub.hub.reset_stats()
    second = api.build(baked.truss, options(), tag=resources.tag("many-files-2"), progress=events.append)
    fetched = hub.hub.file_bytes()

    old_layers = {layer.name: layer for layer in baked.first.plan.weight_layers.layers}
    new_layers = {layer.name: layer for layer in second.plan.weight_layers.layers}
    assert set(old_layers) == set(new_layers)  # the same groups
    changed_groups = [name for name in new_layers if new_layers[name].entries != old_layers[name].entries]
    group = next(name for name, layer in new_layers.items()
                 if any(e.hash.digest == hashlib.sha256(new_bytes).hexdigest() for e in layer.entries))
    assert changed_groups == [group]
    # One download stage ran again, and it fetched the changed file only (its group's other files
    # came from the engine's download cache).
    reran = [s for s in steps_from_events(events) if "packager.runtime.transfer" in s.instruction and not s.cached]
    assert len(reran) == 1 and reran[0].stage == group, reran
    assert fetched == SHARD_BYTES
    # In the image: every weight layer but the changed group's has the same diff id as before
    # (its stage was cached, so its files are the very same). The links layer changes with the
    # commit, and the few small layers after the weights are rebuilt on top of it.
    before = docker_client.images.get(baked.first.image.id).attrs["RootFS"]["Layers"]
    after = docker_client.images.get(second.image.id).attrs["RootFS"]["Layers"]
    final = final_stage(parse((second.context.path / "Dockerfile").read_text()))
    links_at = index_of(final, r"^ADD pack/weights/links.tar /$")
    tail = len([i for i in final[links_at + 1:] if i.keyword in ("RUN", "COPY", "ADD")])
    weights = len(second.plan.weight_layers.layers)
    assert len(before) == len(after)
    first_weight = len(after) - tail - 1 - weights
    differing = [i - first_weight for i in range(first_weight, len(after) - tail - 1) if before[i] != after[i]]
    assert differing == [list(new_layers).index(group)], differing
    assert before[len(after) - tail - 1] != after[len(after) - tail - 1]  # the links layer
    assert before[:first_weight] == after[:first_weight]  # nothing before the weights was rebuilt
