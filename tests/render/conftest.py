from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from packager.config import load_config
from packager.plan.lock import Lock, weights_inputs_digest, write_lock
from packager.runtime.manifest import Digest, Entry, Manifest, Revision, Source

REPO = Path(__file__).resolve().parents[2]
SHA = "a" * 40
MODEL = ("class Model:\n    def __init__(self, **kwargs):\n        self.r = kwargs.get('lazy_data_resolver')\n"
         "    def predict(self, x):\n        return x\n")


def make_truss(root: Path, config: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(config)
    (root / "model").mkdir(exist_ok=True)
    (root / "model" / "model.py").write_text(MODEL)
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def pin(root: Path, files: dict[str, int]) -> Manifest:
    """Write a pack.lock for root's model_cache[0] as if resolved against the hub at SHA."""
    loaded = load_config(root)
    repo = loaded.config.model_cache[0]
    entries = []
    for path, size in files.items():
        if repo.use_volume:
            dest = f"/app/model_cache/{repo.volume_folder}/{path}"
        else:
            dest = f"/root/.cache/huggingface/hub/models--{repo.repo_id.replace('/', '--')}/snapshots/{SHA}/{path}"
        digest = hashlib.sha256(path.encode()).hexdigest()  # distinct files, distinct blobs
        entries.append(Entry(Source("hf", repo.repo_id, path, "https://huggingface.co"),
                             Revision(repo.revision, SHA), size, Digest("sha256", digest), dest,
                             repo.volume_folder, repo.runtime_secret_name))
    manifest = Manifest(tuple(sorted(entries, key=lambda e: e.destination)), generator="pack test")
    write_lock(root / "pack.lock", Lock(weights_inputs_digest(loaded), manifest))
    return manifest


@pytest.fixture
def sample(tmp_path: Path):
    def copy(name: str) -> Path:
        # The whole tree: samples share ../_packages through external_package_dirs.
        tree = tmp_path / "samples"
        if not tree.exists():
            shutil.copytree(REPO / "sample_trusses", tree)
        return tree / name
    return copy
