"""The written manifests: byte-identical for equal inputs, replaced as a whole (a failed write
leaves the previous set untouched), never holding a secret value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from packager import api
from packager.deploy import files
from packager.errors import DeployError

from .conftest import IMAGE, validated


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", ["k8s", "knative", "kserve"])
def test_equal_inputs_give_byte_identical_files(truss, tmp_path: Path, target):
    root = truss("volume")
    knobs = {"max_replicas": 3, "min_replicas": 1} if target != "kserve" else {"max_replicas": 3}
    first = api.deploy_render(root, tmp_path / "a", target=target, image=IMAGE, knobs=knobs, locked=True)
    second = api.deploy_render(root, tmp_path / "b", target=target, image=IMAGE, knobs=knobs, locked=True)
    assert _tree(first.written.path) == _tree(second.written.path) != {}
    # What is on disk is what was validated: the files parse back to the same resources.
    parsed = [d for f in first.written.files for d in yaml.safe_load_all((first.written.path / f).read_text())]
    assert parsed == validated(first.deployment)


def test_a_different_input_gives_different_bytes(truss, tmp_path: Path):
    root = truss("volume")
    one = api.deploy_render(root, tmp_path / "a", target="k8s", image=IMAGE, locked=True)
    two = api.deploy_render(root, tmp_path / "b", target="k8s", image=IMAGE + "-2", locked=True)
    assert _tree(one.written.path) != _tree(two.written.path)


def test_rendering_again_replaces_the_whole_directory(truss, tmp_path: Path, chain_file: Path):
    out = tmp_path / "out"
    chain = api.chains_deploy_render(chain_file, out, target="k8s", registry="r.example/t", tag="v1")
    assert len(chain.written.files) == 3  # the ConfigMap, then one file per chainlet
    api.deploy_render(truss("none"), out, target="k8s", image=IMAGE)
    assert sorted(p.name for p in out.iterdir()) == ["00-plain.yaml"]  # nothing of the chain is left
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no staging left behind


def test_a_failed_write_leaves_the_previous_manifests(truss, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    out = tmp_path / "out"
    api.deploy_render(truss("none"), out, target="k8s", image=IMAGE)
    before = _tree(out)
    real_rename = Path.rename

    def failing_rename(self: Path, target: os.PathLike[str] | str) -> Path:
        if Path(target) == out and self.name.startswith(".out.deploy-"):  # the staged set moving into place
            raise OSError(5, "Input/output error")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(OSError):
        api.deploy_render(truss("volume"), out, target="k8s", image=IMAGE, locked=True)
    assert _tree(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_output_that_is_a_file(truss, tmp_path: Path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DeployError, match="is not a directory"):
        api.deploy_render(truss("none"), tmp_path / "f", target="k8s", image=IMAGE)


def test_a_secret_value_never_reaches_a_manifest(truss, tmp_path: Path):
    root = truss("none")
    (root / "config.yaml").write_text("model_name: plain\nsecrets:\n  api_key: sk-live-123456\n")
    deployment, values = api.deploy_manifests(root, target="k8s", image=IMAGE)
    assert values == frozenset({"sk-live-123456"})
    assert "sk-live-123456" not in files.to_yaml(deployment.manifests())
    # The check itself: a value that did reach a manifest (here: as the image tag) stops the write.
    with pytest.raises(DeployError, match="secret value"):
        api.deploy_render(root, tmp_path / "o", target="k8s", image="r.example/m:sk-live-123456")
    assert not (tmp_path / "o").exists()
