"""Pure parts of the sources: credentials lookup, dispatch, locations, layout, retry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from packager.errors import PlanError
from packager.plan.sources import Credentials, SourceSpec, hf_cache_root_for, source_kind
from packager.plan.sources.layout import hf_repo_folder, unsafe_path_reason
from packager.plan.sources.listing import RemoteFile, SourceRef, to_entries
from packager.plan.sources.retry import RetryPolicy, call_with_retries
from packager.plan.sources.spec import bucket_location
from packager.runtime.manifest import Digest


def test_hf_token_lookup_order(tmp_path: Path) -> None:
    env = {"HF_TOKEN": "from-hf-token", "HUGGING_FACE_HUB_TOKEN": "from-legacy"}
    assert Credentials(env, tmp_path).hf_token("hf_access_token").origin == "env HF_TOKEN"
    assert (
        Credentials({"HUGGING_FACE_HUB_TOKEN": "x"}).hf_token("n").origin
        == "env HUGGING_FACE_HUB_TOKEN"
    )
    env["TRUSS_SECRET_hf_access_token"] = "from-truss-env"
    assert Credentials(env, tmp_path).hf_token("hf_access_token").value == "from-truss-env"
    (tmp_path / "hf_access_token").write_text("from-file\n")
    found = Credentials(env, tmp_path).hf_token("hf_access_token")
    assert (
        found.value == "from-file" and found.origin == f"secret file {tmp_path / 'hf_access_token'}"
    )
    assert "from-file" not in repr(found)
    assert "from-hf-token" not in repr(Credentials(env, tmp_path))


def test_placeholder_and_empty_values_count_as_missing(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("***")
    assert Credentials({"HF_TOKEN": "  "}, tmp_path).hf_token("tok") is None
    assert Credentials({"TRUSS_SECRET_tok": "***"}).secret("tok") is None


def test_secrets_dir_from_environment(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("v")
    credentials = Credentials.from_environment({"PACK_SECRETS_DIR": str(tmp_path)})
    assert credentials.secrets_dir == tmp_path and credentials.secret("tok").value == "v"
    assert "TRUSS_SECRET_tok" in credentials.where_to_put("tok")


def test_s3_and_gcs_credentials(tmp_path: Path) -> None:
    (tmp_path / "truss_bake").write_text(
        json.dumps(
            {
                "aws_access_key_id": "A",
                "aws_secret_access_key": "zzsecretzz",
                "aws_region": "eu-west-3",
            }
        )
    )
    (tmp_path / "hf_access_token").write_text("hf_not_json")
    (tmp_path / "gcp").write_text(json.dumps({"type": "service_account", "project_id": "p"}))
    credentials = Credentials({"AWS_ACCESS_KEY_ID": "EA", "AWS_SECRET_ACCESS_KEY": "ES"}, tmp_path)
    bake = credentials.s3("truss_bake")
    assert (bake.access_key_id, bake.region) == ("A", "eu-west-3") and "zzsecretzz" not in repr(
        bake
    )
    # An HF token under the shared default name is not an S3 credential: fall back to the env.
    assert credentials.s3("hf_access_token").origin.startswith("env AWS_ACCESS_KEY_ID")
    assert Credentials({}, tmp_path).s3("hf_access_token") is None
    assert credentials.gcs_service_account("gcp")[0]["project_id"] == "p"
    assert credentials.gcs_service_account("hf_access_token") is None


@pytest.mark.parametrize(
    ("repo_id", "kind", "expected"),
    [
        ("org/name", None, "hf"),
        ("s3://b/p", None, "s3"),
        ("s3://b/p", "hf", "s3"),
        ("gs://b/p", "gcs", "gcs"),
        ("b/p", "s3", "s3"),
        ("azure://a/c/b", None, "azure"),
    ],
)
def test_source_kind(repo_id: str, kind: str | None, expected: str) -> None:
    assert source_kind(SourceSpec(repo_id, True, kind=kind)) == expected


def test_contradicting_kind_is_an_error() -> None:
    with pytest.raises(PlanError, match="kind 'gcs' contradicts"):
        source_kind(SourceSpec("s3://b/p", True, kind="gcs", index=3))


def test_bucket_location_is_a_folder() -> None:
    location = bucket_location(SourceSpec("s3://b/models/bert/", True), "s3")
    assert (location.bucket, location.prefix) == ("b", "models/bert")
    assert location.relative_path("models/bert/a/x.bin") == "a/x.bin"
    assert location.relative_path("models/bert-large/x.bin") is None
    assert location.relative_path("models/bert") == "bert"  # the prefix names one object
    assert bucket_location(SourceSpec("b/p", True, kind="s3"), "s3").bucket == "b"
    with pytest.raises(PlanError, match="no bucket name"):
        bucket_location(SourceSpec("s3:///p", True), "s3")


def test_hf_cache_root_follows_model_environment() -> None:
    assert hf_cache_root_for(None) == "/root/.cache/huggingface/hub"
    assert hf_cache_root_for({"HF_HOME": "/models/hf/"}) == "/models/hf/hub"
    assert hf_cache_root_for({"HF_HOME": "/x", "HF_HUB_CACHE": "/cache"}) == "/cache"
    assert hf_repo_folder("org/name") == "models--org--name"


@pytest.mark.parametrize("path", ["", "/abs", "a/../b", "a//b", "./a", "a/\x00"])
def test_unsafe_paths_are_refused(path: str) -> None:
    assert unsafe_path_reason(path) is not None
    item = RemoteFile(path, path, 1, Digest("none", ""), "r")
    with pytest.raises(PlanError, match="cannot place"):
        to_entries(
            SourceSpec("s3://b/p", True, volume_folder="v"),
            SourceRef("s3", "b", None),
            [item],
            lambda f: "/x",
        )


def test_retry_only_transient_errors() -> None:
    calls: list[int] = []
    policy = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0)

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError("slow")
        return "ok"

    assert (
        call_with_retries(
            flaky, lambda e: isinstance(e, TimeoutError), policy, sleep=lambda s: None
        )
        == "ok"
    )
    calls.clear()

    def not_found() -> str:
        calls.append(1)
        raise ValueError("404")

    with pytest.raises(ValueError):
        call_with_retries(not_found, lambda e: False, policy, sleep=lambda s: None)
    assert len(calls) == 1
