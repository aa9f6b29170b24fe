"""S3 sources against moto's server on 127.0.0.1 (correctness only: moto copies each object
per ranged GET, so it says nothing about speed)."""

from __future__ import annotations

import hashlib
import json

import boto3
import pytest

from packager.runtime.manifest import Digest, Entry, Manifest, Revision, Source
from packager.runtime.transfer import TransferFailed, fetch

from .conftest import FAST, KiB, MiB, payload

BUCKET = "weights"


@pytest.fixture
def bucket(moto_endpoint):
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="k", aws_secret_access_key="s")
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    s3.delete_bucket(Bucket=BUCKET)


def s3_entry(key: str, data: bytes, secret: str | None = "aws", algorithm: str = "md5") -> Entry:
    digest = hashlib.md5(data).hexdigest() if algorithm == "md5" else hashlib.sha256(data).hexdigest()
    return Entry(Source("s3", BUCKET, key, region="us-east-1"), Revision("etag", digest),
                 len(data), Digest(algorithm, digest), f"/app/model_cache/s3/{key}", "s3", secret)


def _env(moto_endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": moto_endpoint}


@pytest.mark.parametrize("keyset", [
    {"access_key_id": "k", "secret_access_key": "s", "region": "us-east-1"},
    {"aws_access_key_id": "k", "aws_secret_access_key": "s", "aws_region": "us-east-1"},
])
def test_s3_ranged_fetch_with_either_secret_format(bucket, moto_endpoint, tmp_path, keyset):
    big, small = payload(1 * MiB + 5, 1), payload(10 * KiB, 2)
    bucket.put_object(Bucket=BUCKET, Key="dir/model.bin", Body=big)
    bucket.put_object(Bucket=BUCKET, Key="config.json", Body=small)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "aws").write_text(json.dumps(keyset))
    manifest = Manifest((s3_entry("config.json", small, algorithm="sha256"),
                         s3_entry("dir/model.bin", big)))
    result = fetch(manifest, str(tmp_path / "out"), settings=FAST, secrets_dir=str(secrets),
                   env=_env(moto_endpoint))
    assert (tmp_path / "out" / "s3" / "dir" / "model.bin").read_bytes() == big
    assert (tmp_path / "out" / "s3" / "config.json").read_bytes() == small
    assert result.bytes_downloaded == len(big) + len(small)


def test_s3_credentials_from_the_environment(bucket, moto_endpoint, tmp_path):
    data = payload(300 * KiB)
    bucket.put_object(Bucket=BUCKET, Key="a.bin", Body=data)
    env = dict(_env(moto_endpoint), AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s")
    fetch(Manifest((s3_entry("a.bin", data, secret=None),)), str(tmp_path), settings=FAST, env=env)
    assert (tmp_path / "s3" / "a.bin").read_bytes() == data


def test_s3_missing_object_fails_fast_with_its_name(bucket, moto_endpoint, tmp_path):
    entry = s3_entry("nope.bin", b"x" * 10, secret=None)
    env = dict(_env(moto_endpoint), AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s")
    with pytest.raises(TransferFailed) as info:
        fetch(Manifest((entry,)), str(tmp_path), settings=FAST, env=env)
    assert "s3://weights/nope.bin" in str(info.value) and "NoSuchKey" in str(info.value)
    assert info.value.failures[0].destination.endswith("nope.bin")


def test_s3_digest_mismatch_is_reported(bucket, moto_endpoint, tmp_path):
    data = payload(100 * KiB)
    bucket.put_object(Bucket=BUCKET, Key="a.bin", Body=data)
    entry = s3_entry("a.bin", data + b"!", secret=None)
    entry = Entry(entry.source, entry.revision, len(data), entry.hash, entry.destination)
    env = dict(_env(moto_endpoint), AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s")
    with pytest.raises(TransferFailed) as info:
        fetch(Manifest((entry,)), str(tmp_path), settings=FAST, env=env)
    assert "md5 mismatch" in str(info.value)
    assert not (tmp_path / "s3" / "a.bin").exists()
