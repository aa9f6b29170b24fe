"""Resolving s3:// and gs:// model_cache entries against moto and gcp-storage-emulator."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import google_crc32c
import pytest

from packager.errors import PlanError
from packager.plan.sources import Credentials, SourceSpec, resolve_source
from packager.plan.sources.gcs import object_digest as gcs_digest
from packager.plan.sources.s3 import object_digest as s3_digest
from tests.fixtures.object_stores import MULTIPART_CHUNK, GcsStub, S3Stub

FILES = {
    "models/bert/config.json": b"{}",
    "models/bert/model.safetensors": b"w" * 3000,
    "models/bert/onnx/model.onnx": b"onnx",
    "models/bert-large/config.json": b"{}",  # shares the string prefix, not the folder
    "other/readme.md": b"hi",
}


def volume(uri: str, **kw: object) -> SourceSpec:
    return SourceSpec(repo_id=uri, use_volume=True, volume_folder="bert", index=2, **kw)  # type: ignore[arg-type]


def env_creds() -> Credentials:
    return Credentials.from_environment(secrets_dir=None)


# --- S3 ----------------------------------------------------------------------------------------
def test_s3_prefix_listing_hashes_and_versions(s3_server: S3Stub) -> None:
    s3_server.create_bucket("weights", versioned=True)
    s3_server.put_many("weights", FILES)
    put = s3_server.put("weights", "models/bert/model.safetensors", b"w" * 3000, sha256=True)
    entries = resolve_source(volume("s3://weights/models/bert"), env_creds())
    by_path = {e.source.path: e for e in entries}
    assert sorted(by_path) == sorted(k for k in FILES if k.startswith("models/bert/"))
    weights = by_path["models/bert/model.safetensors"]
    assert weights.hash.algorithm == "sha256"
    assert weights.hash.digest == hashlib.sha256(b"w" * 3000).hexdigest()
    assert weights.revision.resolved == put["VersionId"]
    assert weights.destination == "/app/model_cache/bert/model.safetensors"
    assert weights.source.endpoint == s3_server.endpoint and weights.source.repo == "weights"
    config = by_path["models/bert/config.json"]
    assert (config.hash.algorithm, config.hash.digest) == ("md5", hashlib.md5(b"{}").hexdigest())
    assert (
        by_path["models/bert/onnx/model.onnx"].destination
        == "/app/model_cache/bert/onnx/model.onnx"
    )


def test_s3_bake_mode_unversioned_multipart_and_patterns(s3_server: S3Stub) -> None:
    s3_server.create_bucket("weights")
    s3_server.put_many("weights", FILES)
    s3_server.put("weights", "models/bert/big.bin", b"b" * (MULTIPART_CHUNK + 10), multipart=True)
    spec = SourceSpec(
        repo_id="s3://weights/models/bert/", use_volume=False, allow_patterns=["*.bin", "*.json"]
    )
    entries = {e.source.path: e for e in resolve_source(spec, env_creds())}
    assert sorted(entries) == ["models/bert/big.bin", "models/bert/config.json"]
    big = entries["models/bert/big.bin"]
    assert big.hash.algorithm == "none" and big.size == MULTIPART_CHUNK + 10
    assert big.destination == "/app/model_cache/weights/models/bert/big.bin"
    etag, _, modified = entries["models/bert/config.json"].revision.resolved.partition("@")
    assert etag == hashlib.md5(b"{}").hexdigest() and modified.startswith("20")


def test_s3_credentials_from_secret_json(
    s3_server: S3Stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_server.create_bucket("weights")
    s3_server.put_many("weights", FILES)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (tmp_path / "aws").write_text(
        json.dumps(
            {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr3t", "region": "eu-west-1"}
        )
    )
    spec = volume("s3://weights/models/bert", runtime_secret_name="aws")
    entries = resolve_source(spec, Credentials.from_environment(secrets_dir=tmp_path))
    assert {e.source.region for e in entries} == {"eu-west-1"}
    assert {e.secret_name for e in entries} == {"aws"}


def test_s3_errors(s3_server: S3Stub) -> None:
    with pytest.raises(PlanError, match="bucket 'absent' does not exist") as missing:
        resolve_source(volume("s3://absent/models"), env_creds())
    assert "model_cache[2] (s3://absent/models)" in str(missing.value)
    s3_server.create_bucket("weights")
    s3_server.put_many("weights", FILES)
    with pytest.raises(PlanError, match="no object under 's3://weights/models/gpt'"):
        resolve_source(volume("s3://weights/models/gpt"), env_creds())
    with pytest.raises(PlanError, match="whole bucket"):
        resolve_source(volume("s3://weights"), env_creds())
    with pytest.raises(PlanError) as nomatch:
        resolve_source(volume("s3://weights/models/bert", allow_patterns=["*.gguf"]), env_creds())
    assert "no file matched" in str(nomatch.value) and "model.safetensors" in str(nomatch.value)


def test_s3_unreachable_endpoint() -> None:
    creds = Credentials(
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "s",
            "AWS_MAX_ATTEMPTS": "1",
        }
    )
    with pytest.raises(PlanError, match="cannot reach http://127.0.0.1:9"):
        resolve_source(volume("s3://weights/models"), creds)


def test_s3_digest_rules() -> None:
    md5 = hashlib.md5(b"x").hexdigest()
    assert s3_digest({"ETag": f'"{md5}"'}).algorithm == "md5"
    assert s3_digest({"ETag": f'"{md5}"', "ServerSideEncryption": "aws:kms"}).algorithm == "none"
    assert s3_digest({"ETag": f'"{md5}-3"'}).algorithm == "none"
    composite = {"ETag": f'"{md5}-3"', "ChecksumSHA256": "abc=-3", "ChecksumType": "COMPOSITE"}
    assert s3_digest(composite).algorithm == "none"
    full = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    assert (
        s3_digest({"ETag": f'"{md5}-3"', "ChecksumSHA256": full}).digest
        == hashlib.sha256(b"x").hexdigest()
    )


# --- GCS ---------------------------------------------------------------------------------------
def test_gcs_prefix_listing_hashes_and_generations(gcs_server: GcsStub) -> None:
    gcs_server.create_bucket("weights")
    gcs_server.put_many("weights", FILES)
    blob = gcs_server.put("weights", "models/bert/model.safetensors", b"v" * 100)
    entries = {
        e.source.path: e for e in resolve_source(volume("gs://weights/models/bert"), env_creds())
    }
    assert sorted(entries) == sorted(k for k in FILES if k.startswith("models/bert/"))
    weights = entries["models/bert/model.safetensors"]
    assert (weights.hash.algorithm, weights.hash.digest) == (
        "md5",
        hashlib.md5(b"v" * 100).hexdigest(),
    )
    assert weights.revision.resolved == str(blob.generation) and weights.size == 100
    assert weights.source.kind == "gcs" and weights.source.endpoint == gcs_server.endpoint
    assert weights.destination == "/app/model_cache/bert/model.safetensors"
    bake = SourceSpec(
        repo_id="gs://weights/models/bert", use_volume=False, allow_patterns=["onnx/"]
    )
    [onnx] = resolve_source(bake, env_creds())
    assert onnx.destination == "/app/model_cache/weights/models/bert/onnx/model.onnx"


def test_gcs_errors(gcs_server: GcsStub) -> None:
    with pytest.raises(PlanError, match="bucket 'absent' does not exist"):
        resolve_source(volume("gs://absent/models"), env_creds())
    gcs_server.create_bucket("weights")
    gcs_server.put_many("weights", FILES)
    with pytest.raises(PlanError, match="no object under 'gs://weights/models/gpt'"):
        resolve_source(volume("gs://weights/models/gpt"), env_creds())
    with pytest.raises(PlanError, match="whole bucket"):
        resolve_source(volume("gs://weights"), env_creds())
    with pytest.raises(PlanError, match="no file matched"):
        resolve_source(volume("gs://weights/models/bert", ignore_patterns=["*"]), env_creds())


def test_gcs_digest_rules() -> None:
    md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    assert gcs_digest(md5, "AAAAAA==").digest == hashlib.md5(b"x").hexdigest()
    crc = base64.b64encode(google_crc32c.Checksum(b"x").digest()).decode()
    assert gcs_digest(None, crc).digest == google_crc32c.Checksum(b"x").digest().hex()
    assert gcs_digest(None, None).algorithm == "none"
