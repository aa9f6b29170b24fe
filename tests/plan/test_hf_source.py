"""Resolving Hugging Face model_cache entries against the mock hub."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from packager.errors import PlanError
from packager.plan.sources import Credentials, RetryPolicy, SourceSpec, resolve_source
from packager.runtime.manifest import ManifestBuilder
from tests.fixtures.hf_hub import MockHub
from tests.fixtures.hf_repos import git_blob_sha1

WEIGHTS = b"\x01\x02" * 4096
FILES = {
    "config.json": "{}",
    "model.safetensors": WEIGHTS,
    "onnx/model.onnx": b"onnx",
    "tokenizer/vocab.txt": "a\nb\n",
}
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
TOKEN = "hf_sekrit_token_value"


@pytest.fixture
def hub(hub_env: MockHub) -> MockHub:
    hub_env.add_repo("org/public").commit(FILES, tags=["v1.0"])
    hub_env.add_repo("org/private", private=True, tokens={TOKEN}).commit(FILES)
    hub_env.add_repo("org/gated", gated=True, tokens={TOKEN}).commit(FILES)
    hub_env.known_tokens.add("hf_other")
    return hub_env


def creds(tmp_path: Path, env_token: str | None = None, secret: str | None = None) -> Credentials:
    """The test process env (HF_ENDPOINT set by hub_env) plus a secrets dir of our own."""
    secrets = tmp_path / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    if secret is not None:
        (secrets / "hf_access_token").write_text(secret + "\n")
    credentials = Credentials.from_environment(secrets_dir=secrets)
    if env_token is not None:
        credentials = Credentials({**credentials.env, "HF_TOKEN": env_token}, secrets)
    return credentials


def volume(repo_id: str, **kw: object) -> SourceSpec:
    return SourceSpec(repo_id=repo_id, use_volume=True, volume_folder="m", index=0, **kw)  # type: ignore[arg-type]


def resolve(spec: SourceSpec, credentials: Credentials) -> list:
    return resolve_source(spec, credentials, retry=FAST)


def test_branch_is_pinned_to_its_commit_with_hashes(hub: MockHub, tmp_path: Path) -> None:
    sha = hub.repos["org/public"].head()
    entries = resolve(volume("org/public", revision="main"), creds(tmp_path))
    by_path = {e.source.path: e for e in entries}
    assert set(by_path) == set(FILES)
    weights = by_path["model.safetensors"]
    assert weights.revision.requested == "main" and weights.revision.resolved == sha
    assert (weights.hash.algorithm, weights.hash.digest) == (
        "sha256",
        hashlib.sha256(WEIGHTS).hexdigest(),
    )
    assert weights.size == len(WEIGHTS)
    assert weights.destination == "/app/model_cache/m/model.safetensors"
    assert weights.source.endpoint == hub.url and weights.volume_folder == "m"
    config = by_path["config.json"]
    assert (config.hash.algorithm, config.hash.digest) == ("git-sha1", git_blob_sha1(b"{}"))
    ManifestBuilder(entries).build("pack test")  # destinations pass the manifest's checks


def test_moved_branch_keeps_pinned_sha_and_tags_resolve(hub: MockHub, tmp_path: Path) -> None:
    repo = hub.repos["org/public"]
    old = repo.head()
    new = repo.commit({"config.json": '{"v": 2}'}, inherit=True)
    assert {
        e.revision.resolved for e in resolve(volume("org/public", revision="main"), creds(tmp_path))
    } == {new}
    pinned = resolve(volume("org/public", revision=old), creds(tmp_path))
    assert {e.revision.resolved for e in pinned} == {old}
    tagged = resolve(volume("org/public", revision="v1.0"), creds(tmp_path))
    assert {e.revision.resolved for e in tagged} == {old}
    assert {e.revision.requested for e in tagged} == {"v1.0"}


def test_empty_revision_bake_mode_uses_hf_cache_layout(hub: MockHub, tmp_path: Path) -> None:
    sha = hub.repos["org/public"].head()
    spec = SourceSpec(repo_id="org/public", use_volume=False, allow_patterns=["*.json"])
    [entry] = resolve(spec, creds(tmp_path))
    assert entry.destination == (
        f"/root/.cache/huggingface/hub/models--org--public/snapshots/{sha}/config.json"
    )
    assert entry.volume_folder is None and entry.revision.requested == ""
    custom = resolve_source(spec, creds(tmp_path), hf_cache_root="/data/hf", retry=FAST)
    assert custom[0].destination.startswith("/data/hf/models--org--public/snapshots/")


def test_patterns_select_files(hub: MockHub, tmp_path: Path) -> None:
    spec = volume("org/public", allow_patterns=["*.onnx", "tokenizer/"], ignore_patterns=["*.txt"])
    assert [e.source.path for e in resolve(spec, creds(tmp_path))] == ["onnx/model.onnx"]


def test_no_file_matched_lists_the_repo(hub: MockHub, tmp_path: Path) -> None:
    with pytest.raises(PlanError) as err:
        resolve(volume("org/public", allow_patterns=["*.gguf"]), creds(tmp_path))
    text = str(err.value)
    assert "model_cache[0] (org/public)" in text and "no file matched" in text
    assert "config.json" in text and "model.safetensors" in text and "4 files" in text


@pytest.mark.parametrize("source", ["secret", "env"])
def test_private_repo_with_token(hub: MockHub, tmp_path: Path, source: str) -> None:
    credentials = (
        creds(tmp_path, secret=TOKEN) if source == "secret" else creds(tmp_path, env_token=TOKEN)
    )
    entries = resolve(volume("org/private"), credentials)
    assert len(entries) == len(FILES) and entries[0].secret_name == "hf_access_token"
    assert all(r.authorized for r in hub.requests)


def test_private_repo_without_token_says_how_to_provide_one(hub: MockHub, tmp_path: Path) -> None:
    with pytest.raises(PlanError) as err:
        resolve(volume("org/private"), creds(tmp_path))
    text = str(err.value)
    assert "org/private" in text and "anonymously" in text
    assert "hf_access_token" in text and "HF_TOKEN" in text


def test_wrong_token_names_its_origin_but_not_its_value(hub: MockHub, tmp_path: Path) -> None:
    with pytest.raises(PlanError) as err:
        resolve(volume("org/private"), creds(tmp_path, secret="hf_wrong_value"))
    text = str(err.value)
    assert "401" in text and "secret file" in text and "hf_access_token" in text
    assert "hf_wrong_value" not in text
    with pytest.raises(PlanError) as other:  # a valid token without access to the repo
        resolve(volume("org/private"), creds(tmp_path / "other", env_token="hf_other"))
    assert "env HF_TOKEN" in str(other.value) and "hf_other" not in str(other.value)


def test_gated_repo_is_checked_at_plan_time(hub: MockHub, tmp_path: Path) -> None:
    with pytest.raises(PlanError) as anonymous:
        resolve(volume("org/gated"), creds(tmp_path))
    assert "gated" in str(anonymous.value) and "no token" in str(anonymous.value)
    with pytest.raises(PlanError) as denied:
        resolve(volume("org/gated"), creds(tmp_path, env_token="hf_other"))
    assert "request access" in str(denied.value)
    assert len(resolve(volume("org/gated"), creds(tmp_path, env_token=TOKEN))) == len(FILES)


def test_missing_repo_fails_once_without_retry(hub: MockHub, tmp_path: Path) -> None:
    with pytest.raises(PlanError) as err:
        resolve(volume("org/absent"), creds(tmp_path))
    assert "org/absent" in str(err.value) and "no such Hugging Face repo" in str(err.value)
    assert hub.count(contains="/api/models/org/absent") == 1  # deterministic: not retried


def test_missing_revision_lists_refs(hub: MockHub, tmp_path: Path) -> None:
    with pytest.raises(PlanError) as err:
        resolve(volume("org/public", revision="dev"), creds(tmp_path))
    text = str(err.value)
    assert "revision 'dev' does not exist" in text and "branches: main" in text and "v1.0" in text
    assert hub.count(contains="/revision/dev") == 1
    with pytest.raises(PlanError, match="does not exist"):
        resolve(volume("org/public", revision="0" * 40), creds(tmp_path))


def test_transient_errors_are_retried(hub: MockHub, tmp_path: Path) -> None:
    hub.fail_next(2, 503, contains="/api/models/org/public")
    assert resolve(volume("org/public"), creds(tmp_path))
    assert hub.count(contains="/api/models/org/public") == 3
    hub.fail_next(5, 503, contains="/api/models/org/public")
    with pytest.raises(PlanError, match="503"):
        resolve(volume("org/public"), creds(tmp_path))


def test_unreachable_hub_and_invalid_repo_id(tmp_path: Path) -> None:
    with MockHub() as stopped:
        url = stopped.url
    offline = Credentials({"HF_ENDPOINT": url}, None)
    with pytest.raises(PlanError, match="cannot reach"):
        resolve(volume("org/public"), offline)
    with pytest.raises(PlanError, match="not a valid Hugging Face repo id"):
        resolve(volume("org/bad--name/x"), offline)
