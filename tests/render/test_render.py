"""Rendered build contexts: layer order, mounts, no secrets, determinism, atomic output."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
from pathlib import Path

import pytest

from packager import api
from packager.errors import PlanError, RenderError
from packager.plan.model import BuildOptions
from packager.runtime.manifest import IMAGE_MANIFEST_PATH, load as load_manifest

from .conftest import SHA, make_truss, pin
from .dockerfile import final_stage, index_of, parse

BAKE = """\
model_name: baked
system_packages: [curl]
requirements: [numpy]
secrets:
  hf_access_token: null
build:
  secret_to_path_mapping:
    hf_access_token: /run/secrets/hf
build_commands:
  - echo prepare > /opt/ready
  - cat /app/model/model.py > /dev/null
model_cache:
  - repo_id: org/model
    revision: main
    use_volume: false
"""

VOLUME = """\
model_name: volumed
requirements: [numpy]
model_cache:
  - repo_id: org/model
    revision: main
    use_volume: true
    volume_folder: weights
"""


def _installer_uv_bytes(ctx: Path) -> int:
    """pack's uv (bound into the install steps, never a file of the image) in the context."""
    uv = ctx / "pack" / "installer" / "uv"
    return uv.stat().st_size if uv.exists() else 0


def _render(root: Path, out: Path, **options):
    return api.render(root, out, BuildOptions(**options), locked=True)


def test_bake_mode_layer_order_and_mounts(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", BAKE, {"data/info.txt": "x", "packages/helper/__init__.py": ""})
    pin(root, {"model.safetensors": 200 * 1024 * 1024, "config.json": 500, "tokenizer.json": 4000})
    plan, ctx = _render(root, tmp_path / "ctx")
    instructions = parse((ctx.path / "Dockerfile").read_text())
    stages = {i.args.split(" AS ")[-1] for i in instructions if i.keyword == "FROM" and " AS " in i.args}
    large = [layer.name for layer in plan.weight_layers.layers if layer.files == 1 and layer.bytes > 1e8]
    assert len(large) == 1 and stages == {large[0], "pack-weights-s00"}  # the large file alone, the small ones together
    final = final_stage(instructions)
    order = [
        index_of(final, r"^FROM "),
        index_of(final, r"apt-get install .* curl"),
        index_of(final, r"pack-installer/install -r /opt/pack/requirements.txt"),
        index_of(final, rf"^COPY --from={large[0]} /opt/pack-weights/ /$"),
        index_of(final, r"^ADD pack/weights/links.tar /$"),
        index_of(final, r"echo prepare"),
        index_of(final, r"^COPY data /app/data"),
        index_of(final, r"cp -R /opt/pack-runtime /app/packager"),
        index_of(final, r"^COPY packages /packages"),
        index_of(final, r"^COPY model /app/model"),
        index_of(final, r"cat /app/model/model.py"),
        index_of(final, r"^COPY app/ /app/"),
        index_of(final, r"^ENTRYPOINT"),
    ]
    assert -1 not in order, order
    assert order == sorted(order), order
    assert all(i.keyword != "COPY" for i in final[order[-2] + 1:-1])  # config.yaml is the last COPY
    # Each build command gets the declared secret as a BuildKit mount, never as ENV/ARG.
    for ins in final:
        if "echo prepare" in ins.args or "cat /app/model" in ins.args:
            assert "--mount=type=secret,id=hf_access_token,target=/run/secrets/hf,required=true" in ins.flags
    fetch = [i for i in instructions if "packager.runtime.transfer" in i.args]
    assert len(fetch) == 2
    for ins in fetch:
        assert any(f.startswith("--mount=type=cache,id=pack-weights") for f in ins.flags)
        assert "--mount=type=secret,id=hf_access_token,target=/run/secrets/hf_access_token" in ins.flags
    # The HF layout: bytes in blobs/<sha256> (the stage manifests), snapshot symlinks and refs/main
    # in the links archive.
    repo = "root/.cache/huggingface/hub/models--org--model"
    blobs = {e.destination for m in (ctx.path / "pack" / "weights").glob("pack-weights-*.json")
             for e in load_manifest(str(m)).entries}
    assert blobs == {f"/opt/pack-weights/{repo}/blobs/{hashlib.sha256(p.encode()).hexdigest()}"
                     for p in ("model.safetensors", "config.json", "tokenizer.json")}
    with tarfile.open(ctx.path / "pack" / "weights" / "links.tar") as archive:
        members = {m.name: m for m in archive.getmembers()}
        assert archive.extractfile(f"{repo}/refs/main").read().decode() == SHA
    link = members[f"{repo}/snapshots/{SHA}/config.json"]
    assert link.issym() and link.linkname == f"../../blobs/{hashlib.sha256(b'config.json').hexdigest()}"
    assert not [n for n in members if not n.startswith(repo + "/")]  # /root and its parents keep their modes
    assert not [i for i in instructions if i.keyword in ("ARG", "ENV", "LABEL")
                and re.search(r"token|secret|password", i.args, re.I)]
    # Weights are fetched during the build, never carried in the context.
    assert ctx.bytes - _installer_uv_bytes(ctx.path) < 5 * 1024 * 1024  # no weight in the context
    assert any("cat /app/model/model.py" in n for n in plan.notes) or plan.notes


def test_volume_mode_has_manifest_and_no_weights(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", VOLUME)
    manifest = pin(root, {"model.safetensors": 90_000_000, "config.json": 600})
    plan, ctx = _render(root, tmp_path / "ctx")
    final = final_stage(parse((ctx.path / "Dockerfile").read_text()))
    assert not [i for i in final if i.keyword == "FROM" and " AS " in i.args]
    assert index_of(final, rf"COPY pack/weights/manifest.json {IMAGE_MANIFEST_PATH}") > 0
    assert index_of(final, r'^VOLUME \["/var/lib/pack/cache"\]') > 0
    assert index_of(final, r"COPY --from") == -1
    assert load_manifest(str(ctx.path / "pack" / "weights" / "manifest.json")) == manifest
    assert ctx.bytes - _installer_uv_bytes(ctx.path) < 5 * 1024 * 1024  # no weight in the context


def test_render_is_deterministic_and_path_independent(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "a", VOLUME, {"data/x.txt": "1"})
    pin(root, {"w.bin": 10})
    _, first = _render(root, tmp_path / "out1")
    _, second = _render(root, tmp_path / "out1")
    moved = tmp_path / "elsewhere" / "a"
    shutil.copytree(root, moved)
    os.utime(moved / "model" / "model.py", (1, 1))
    _, third = _render(moved, tmp_path / "out3")
    assert first.digest == second.digest == third.digest
    assert (tmp_path / "out1" / "Dockerfile").read_bytes() == (tmp_path / "out3" / "Dockerfile").read_bytes()


def test_code_change_changes_only_the_code_layer_inputs(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", VOLUME)
    pin(root, {"w.bin": 10})
    _, before = _render(root, tmp_path / "o1")
    (root / "model" / "model.py").write_text("class Model:\n    def predict(self, x):\n        return 2\n")
    _, after = _render(root, tmp_path / "o2")
    assert before.digest != after.digest
    assert (tmp_path / "o1" / "Dockerfile").read_text() == (tmp_path / "o2" / "Dockerfile").read_text()


def test_literal_secret_never_reaches_the_context(tmp_path: Path) -> None:
    value = "hf_LiteralSecretValue123456"
    root = make_truss(tmp_path / "t", f"secrets:\n  hf_access_token: {value}\n")
    _, ctx = _render(root, tmp_path / "ctx")
    for path in ctx.path.rglob("*"):
        if path.is_file():
            assert value.encode() not in path.read_bytes(), path
    assert "hf_access_token: null" in (ctx.path / "app" / "config.yaml").read_text()
    assert json.loads((ctx.path / "app" / ".pack" / "config.json").read_text())["secrets"] == {"hf_access_token": None}
    (root / "model" / "helper.py").write_text(f"TOKEN = '{value}'\n")
    with pytest.raises(RenderError, match="contains the value of a secret"):
        _render(root, tmp_path / "ctx2")
    assert not (tmp_path / "ctx2").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".ctx2")] == []


def test_nothing_of_vcs_or_virtualenvs_is_copied(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", "model_name: x\n", {
        ".git/config": "[core]", "model/.venv/bin/python": "", "model/__pycache__/m.pyc": "",
        "data/s3_credentials.json": '{"aws_access_key_id": "AKIA"}', "data/real.txt": "ok"})
    _, ctx = _render(root, tmp_path / "ctx")
    names = {p.relative_to(ctx.path).as_posix() for p in ctx.path.rglob("*")}
    assert "data/real.txt" in names and ".dockerignore" in names
    assert not [n for n in names if ".git" in n.split("/") or ".venv" in n or n.endswith(".pyc")]
    assert "data/s3_credentials.json" not in names
    assert any("credential file" in n for n in ctx.notes)


def test_locked_render_needs_a_fresh_lock(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", VOLUME)
    with pytest.raises(PlanError, match="pack.lock is missing"):
        _render(root, tmp_path / "ctx")
    pin(root, {"w.bin": 1})
    _render(root, tmp_path / "ctx")
    (root / "config.yaml").write_text(VOLUME.replace("volume_folder: weights", "volume_folder: other"))
    with pytest.raises(PlanError, match="stale: its weight sources changed"):
        _render(root, tmp_path / "ctx")


def test_build_commands_after_code_option(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", "build_commands:\n  - echo one\n")
    _, ctx = _render(root, tmp_path / "ctx", build_commands_after_code=True)
    final = final_stage(parse((ctx.path / "Dockerfile").read_text()))
    assert index_of(final, "echo one") > index_of(final, "^COPY model /app/model")


def test_ca_bundle_is_trusted_by_pip_and_apt(tmp_path: Path) -> None:
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    root = make_truss(tmp_path / "t", "system_packages: [git]\nrequirements: [numpy]\n")
    _, ctx = _render(root, tmp_path / "ctx", ca_bundle=str(bundle))
    final = final_stage(parse((ctx.path / "Dockerfile").read_text()))
    ca = index_of(final, "PIP_CERT=/etc/pack/ca-bundle.pem")
    assert 0 < ca < index_of(final, "apt-get install") < index_of(final, "pack-installer/install")
    assert index_of(final, "Acquire::https::CAInfo") > 0
    assert (ctx.path / "pack" / "ca-bundle.crt").read_text() == bundle.read_text()


def test_render_refuses_platform_only_builds(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", "trt_llm:\n  build:\n    base_model: decoder\n")
    from packager.errors import UnsupportedError
    with pytest.raises(UnsupportedError, match="engine builder"):
        _render(root, tmp_path / "ctx")


@pytest.mark.parametrize("name", ["echo", "docker-server"])
def test_samples_render(name: str, sample, tmp_path: Path) -> None:
    root = sample(name)
    _, first = _render(root, tmp_path / "a")
    _, second = _render(root, tmp_path / "b")
    assert first.digest == second.digest
    final = final_stage(parse((first.path / "Dockerfile").read_text()))
    assert final[-1].keyword == "ENTRYPOINT"
    assert index_of(final, "^COPY app/ /app/") == len(final) - 2


def test_bake_stage_for_s3_installs_its_client(tmp_path: Path) -> None:
    from packager.plan.lock import Lock, weights_inputs_digest, write_lock
    from packager.config import load_config
    from packager.runtime.manifest import Digest, Entry, Manifest, Revision, Source

    root = make_truss(tmp_path / "t", "model_cache:\n  - repo_id: s3://bucket/w\n    use_volume: false\n")
    entry = Entry(Source("s3", "bucket", "w/a.bin"), Revision("", "etag"), 10, Digest("md5", "0" * 32),
                  "/app/model_cache/bucket/w/a.bin", None, "hf_access_token")
    write_lock(root / "pack.lock", Lock(weights_inputs_digest(load_config(root)), Manifest((entry,))))
    _, ctx = _render(root, tmp_path / "ctx")
    instructions = parse((ctx.path / "Dockerfile").read_text())
    stage = [i for i in instructions if i.stage == 0]
    assert index_of(stage, r"pip install boto3") < index_of(stage, r"packager.runtime.transfer")
    assert index_of(stage, r"pip install boto3") > 0


def test_pip_index_url_is_used_and_never_with_credentials(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", "requirements: [numpy]\n")
    _, ctx = _render(root, tmp_path / "ctx", pip_index_url="https://mirror.example/simple")
    final = final_stage(parse((ctx.path / "Dockerfile").read_text()))
    index_url = index_of(final, 'PIP_INDEX_URL="https://mirror.example/simple"')
    assert 0 < index_url < index_of(final, "pack-installer/install")  # the installer hands it to uv
    with pytest.raises(PlanError, match="carries credentials"):
        _render(root, tmp_path / "ctx2", pip_index_url="https://user:pw@mirror.example/simple")
