"""`weights:` sources (Truss's current weights API) at load and plan time: Truss's rules, pack's
located errors for what it cannot fetch, and resolution into manifest entries at mount_location."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from packager.config import load_config
from packager.errors import ConfigError, PlanError
from packager.plan.lock import ensure_lock, read_lock, weights_inputs_digest
from packager.plan.sources import Credentials, RetryPolicy, resolve_source, weights_spec
from tests.fixtures.hf_hub import MockHub
from tests.fixtures.range_server import RangeServer

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
MODEL = "class Model:\n    def predict(self, x):\n        return x\n"


def truss(root: Path, config: str) -> Path:
    (root / "model").mkdir(parents=True, exist_ok=True)
    (root / "model" / "model.py").write_text(MODEL)
    (root / "config.yaml").write_text(config)
    return root


@pytest.mark.parametrize("source,kind,repo,revision", [
    ("hf://org/model@v1.0", "hf", "org/model", "v1.0"),
    ("hf://org/model", "hf", "org/model", ""),
    ("s3://bucket/models/bert", "s3", "s3://bucket/models/bert", ""),
    ("gs://bucket/m", "gcs", "gs://bucket/m", ""),
    ("https://host.example/files/model.bin", "https", "https://host.example/files/model.bin", ""),
])
def test_weights_uri_becomes_a_source_spec(source: str, kind: str, repo: str, revision: str) -> None:
    spec = weights_spec(source, "/models/x", secret_name="tok", index=2)
    assert (spec.kind, spec.repo_id, spec.revision) == (kind, repo, revision)
    assert spec.mount_location == "/models/x" and spec.runtime_secret_name == "tok"
    assert spec.where == f"weights[2] ({source})"


def test_platform_schemes_are_a_plan_error_too() -> None:
    with pytest.raises(PlanError, match=r"weights\[0\] \(r2://acct.bucket/p\): pack cannot fetch r2://"):
        weights_spec("r2://acct.bucket/p", "/m", index=0)


def test_unfetchable_schemes_and_platform_identities_are_located_load_errors(tmp_path: Path) -> None:
    root = truss(tmp_path / "t", """\
model_name: w
weights:
  - source: azure://account/container/path
    mount_location: /models/a
  - source: hf://org/model@main
    mount_location: /models/b
    auth:
      auth_method: aws_oidc
      aws_oidc_role_arn: arn:aws:iam::1:role/r
      aws_oidc_region: us-east-1
  - source: cw://bucket/x
    mount_location: /models/c
""")
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    found = {(p.path, p.line): p for p in caught.value.problems}
    assert set(found) == {("weights[0].source", 3), ("weights[1].auth.auth_method", 8), ("weights[2].source", 11)}
    assert "pack cannot fetch azure:// sources (Azure Blob Storage)" in found[("weights[0].source", 3)].message
    assert "CUSTOM_SECRET" in (found[("weights[1].auth.auth_method", 8)].hint or "")


def test_truss_rules_for_weights_still_apply(tmp_path: Path) -> None:
    root = truss(tmp_path / "t", """\
weights:
  - source: s3://bucket/p@v2
    mount_location: models
  - source: hf://org/m
    mount_location: /m
  - source: hf://org/n
    mount_location: /m
""")
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    text = "\n".join(p.format() for p in caught.value.problems)
    assert "@ revision syntax is only valid for HuggingFace" in text
    assert "mount_location must be an absolute path" in text
    assert "duplicate mount_location '/m'" in text


def test_secret_name_from_either_spelling(tmp_path: Path) -> None:
    root = truss(tmp_path / "t", """\
weights:
  - source: hf://org/a
    mount_location: /a
    auth_secret_name: top
  - source: hf://org/b
    mount_location: /b
    auth: {auth_method: custom_secret, auth_secret_name: nested}
  - source: hf://org/c
    mount_location: /c
""")
    assert [w.secret_name for w in load_config(root).config.weights] == ["top", "nested", None]


def test_hf_weights_resolve_under_mount_location_and_pin_the_lock(hub_env: MockHub, tmp_path: Path) -> None:
    sha = hub_env.add_repo("org/model").commit({"config.json": "{}", "sub/w.safetensors": b"\x01" * 4096,
                                               "README.md": "x"})
    root = truss(tmp_path / "t", """\
weights:
  - source: hf://org/model@main
    mount_location: /models/m
    ignore_patterns: ["*.md"]
""")
    loaded = load_config(root)
    lock = ensure_lock(loaded, Credentials.from_environment(env={"HF_ENDPOINT": hub_env.url}))
    entries = {e.destination: e for e in lock.manifest.entries}
    assert set(entries) == {"/models/m/config.json", "/models/m/sub/w.safetensors"}
    entry = entries["/models/m/sub/w.safetensors"]
    assert entry.revision.resolved == sha and entry.revision.requested == "main"
    assert entry.hash.algorithm == "sha256" and entry.volume_folder is None and entry.secret_name is None
    assert read_lock(root / "pack.lock") == lock
    # The lock follows the weights: another mount makes it stale.
    (root / "config.yaml").write_text((root / "config.yaml").read_text().replace("/models/m", "/models/n"))
    assert weights_inputs_digest(load_config(root)) != lock.inputs_digest


def test_https_source_is_one_file_sized_by_head(tmp_path: Path) -> None:
    data = b"weights" * 1000
    with RangeServer({"/files/model.bin": data}) as server:
        spec = weights_spec(server.url("/files/model.bin"), "/models/h", index=0)
        [entry] = resolve_source(spec, Credentials.from_environment(env={}), retry=FAST)
        assert entry.destination == "/models/h/model.bin" and entry.size == len(data)
        assert entry.source.kind == "https" and entry.source.path == server.url("/files/model.bin")
        assert entry.hash.algorithm == "none"  # a plain web server publishes no content hash
        with pytest.raises(PlanError, match=r"weights\[0\].*answered HTTP 404"):
            resolve_source(weights_spec(server.url("/files/nope.bin"), "/m", index=0),
                           Credentials.from_environment(env={}), retry=FAST)


def test_https_sha256_etag_is_kept_as_the_digest(tmp_path: Path) -> None:
    data = b"abc" * 100
    digest = hashlib.sha256(data).hexdigest()
    from packager.plan.sources import https

    assert https._digest({"etag": f'"{digest}"'}).algorithm == "sha256"
    assert https._digest({"x-linked-etag": digest}).digest == digest
    assert https._digest({"etag": '"abc-12"'}).algorithm == "none"
