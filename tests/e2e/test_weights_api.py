"""Truss's `weights:` API: what `truss migrate` writes builds and serves like the original.

The installed truss 0.18.30 migrates copies of the MiniLM samples (model_cache -> weights); the
migrated trusses build (volume mode by default: fetched at start, as the platform mounts them;
and baked with bake_weights) and answer exactly what the originals answer. A truss written for
the weights API reads its files in load() without waiting for anything: the server has them in
place first.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from packager import api, runner
from packager.plan.model import BuildOptions
from tests.e2e.conftest import BASE_IMAGE, Hub, Resources, exec_in, start
from tests.fixtures.docker_env import unique

pytestmark = pytest.mark.docker

TEXTS = ["This is an example sentence.", "A man is eating food.", "Weights arrive before load()."]
TRUSS_CLI = Path(os.environ.get("PACK_TRUSS_PYTHON") or "/opt/pack-truss-venv/bin/python").parent / "truss"


def migrate(samples: Path, name: str) -> Path:
    """A copy of the sample beside it (it shares ../_packages), migrated by Truss itself."""
    target = samples / f"{name}-migrated"
    shutil.copytree(samples / name, target)
    (target / "pack.lock").unlink(missing_ok=True)
    done = subprocess.run([str(TRUSS_CLI), "migrate", str(target), "--non-interactive"], input="y\n",
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load((target / "config.yaml").read_text())
    assert "model_cache" not in config and config["weights"][0]["source"].startswith("hf://"), config
    return target


@pytest.fixture(scope="module")
def migrated(samples: Path) -> dict[str, Path]:
    if not TRUSS_CLI.is_file():
        pytest.skip(f"the reference truss CLI is not installed ({TRUSS_CLI}); run scripts/install.sh")
    return {name: migrate(samples, name) for name in ("minilm-volume", "minilm-bake")}


def answer(truss: Path, tag: str, resources: Resources, **options: Any) -> tuple[Any, Any]:
    """Build, start, predict TEXTS, stop: (answer, build result)."""
    result = api.build(truss, BuildOptions(base_image=BASE_IMAGE, **options), tag=resources.tag(tag))
    running = start(result, result.plan, resources)
    try:
        return runner.predict(running.url, {"texts": TEXTS}, timeout=120), result
    finally:
        running.container.remove()


@pytest.mark.parametrize("name,bake", [("minilm-volume", False), ("minilm-bake", True), ("minilm-bake", False)])
def test_migrated_sample_answers_like_the_original(
        name: str, bake: bool, samples: Path, migrated: dict[str, Path], hub: Hub, resources: Resources) -> None:
    original, _ = answer(samples / name, name, resources)
    hub.hub.reset_stats()
    after, result = answer(migrated[name], f"{name}-migrated", resources, bake_weights=bake)
    assert after == original  # the very same numbers
    assert result.plan.weights_mode == ("bake" if bake else "volume")
    mount = yaml.safe_load((migrated[name] / "config.yaml").read_text())["weights"][0]["mount_location"]
    assert {e.destination.rsplit("/", 1)[0] for e in result.plan.manifest.entries} >= {mount}
    if bake:
        assert len(result.plan.weight_layers.layers) >= 1


TINY_MODEL = '''\
from pathlib import Path


class Model:
    # No lazy_data_resolver anywhere: with `weights:` the files are in place before load().
    def load(self):
        root = Path("/models/tiny")
        self._files = {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}

    def predict(self, model_input):
        return self._files
'''


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, hub: Hub) -> Iterator[tuple[Path, dict[str, str]]]:
    repo_id = f"e2e-weights/{unique('tiny')}"
    files = {"config.json": '{"tiny": true}', "sub/vocab.txt": "a\nb\n", "notes.md": "skip me"}
    hub.hub.add_repo(repo_id).commit(files)
    truss = tmp_path_factory.mktemp("weights") / "tiny"
    (truss / "model").mkdir(parents=True)
    (truss / "model" / "model.py").write_text(TINY_MODEL)
    (truss / "config.yaml").write_text(
        "model_name: e2e-weights-tiny\npython_version: py311\nrequirements: []\n"
        f"weights:\n  - source: hf://{repo_id}@main\n    mount_location: /models/tiny\n"
        "    ignore_patterns: ['*.md']\n")
    yield truss, {k: v for k, v in files.items() if not k.endswith(".md")}


@pytest.mark.parametrize("bake", [False, True])
def test_weights_are_in_place_before_load(
        bake: bool, tiny: tuple[Path, dict[str, str]], resources: Resources, docker_client: Any) -> None:
    truss, files = tiny
    result = api.build(truss, BuildOptions(base_image=BASE_IMAGE, bake_weights=bake), tag=resources.tag("tiny"))
    assert result.plan.weights_mode == ("bake" if bake else "volume")
    running = start(result, result.plan, resources)
    try:
        assert runner.predict(running.url, {}, timeout=60) == files
        listing = exec_in(docker_client, running.container.name, ["sha256sum", "/models/tiny/config.json"])
        assert listing.split()[0] == hashlib.sha256(files["config.json"].encode()).hexdigest()
    finally:
        running.container.remove()
