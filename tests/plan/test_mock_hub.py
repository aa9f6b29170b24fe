"""The mock hub answers huggingface_hub the way huggingface.co does."""

from __future__ import annotations

import hashlib
import http.client
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.fixtures.hf_hub import MockHub
from tests.fixtures.hf_repos import git_blob_sha1

REPO_ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = bytes(range(256)) * 400  # 102400 bytes
FILES = {"config.json": '{"a": 1}', "model.safetensors": WEIGHTS, "onnx/model.onnx": b"onnx" * 10}


@pytest.fixture
def repo_hub(hub_env: MockHub) -> MockHub:
    hub_env.add_repo("org/public").commit(FILES, tags=["v1"])
    hub_env.add_repo("org/private", private=True, tokens={"hf_good"}).commit(FILES)
    hub_env.add_repo("org/gated", gated=True, tokens={"hf_good"}).commit(FILES)
    hub_env.known_tokens.add("hf_other")
    return hub_env


def test_model_info_reports_sizes_and_hashes(repo_hub: MockHub) -> None:
    info = HfApi(endpoint=repo_hub.url, token=False).model_info(
        "org/public", revision="main", files_metadata=True
    )
    assert info.sha == repo_hub.repos["org/public"].head()
    by_name = {s.rfilename: s for s in info.siblings}
    assert by_name["model.safetensors"].lfs.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert by_name["model.safetensors"].size == len(WEIGHTS)
    assert by_name["config.json"].lfs is None
    assert by_name["config.json"].blob_id == git_blob_sha1(b'{"a": 1}')


def test_tree_listing_paths_info_and_pagination(repo_hub: MockHub) -> None:
    repo_hub.page_size = 2  # forces the Link-header pagination huggingface_hub follows
    api = HfApi(endpoint=repo_hub.url, token=False)
    assert sorted(api.list_repo_files("org/public")) == sorted(FILES)
    tree = list(api.list_repo_tree("org/public", recursive=True, revision="v1"))
    assert {t.path for t in tree} == set(FILES) | {"onnx"}
    top = list(api.list_repo_tree("org/public", path_in_repo="onnx"))
    assert [t.path for t in top] == ["onnx/model.onnx"]
    info = api.get_paths_info("org/public", ["config.json", "missing"], revision="main")
    assert [i.path for i in info] == ["config.json"]


def test_download_and_snapshot_use_cache_without_refetching(
    repo_hub: MockHub, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    path = hf_hub_download(
        "org/public", "model.safetensors", endpoint=repo_hub.url, cache_dir=cache
    )
    assert Path(path).read_bytes() == WEIGHTS
    # LFS bytes come from the CDN origin, without the Authorization header.
    cdn = [r for r in repo_hub.requests if r.origin == "cdn" and r.method == "GET"]
    assert len(cdn) == 1 and cdn[0].file_bytes == len(WEIGHTS)
    snapshot = snapshot_download("org/public", endpoint=repo_hub.url, cache_dir=cache)
    assert (Path(snapshot) / "onnx/model.onnx").read_bytes() == FILES["onnx/model.onnx"]
    served = repo_hub.file_bytes()
    assert served == sum(len(v) for v in (WEIGHTS, b'{"a": 1}', FILES["onnx/model.onnx"]))
    snapshot_download("org/public", endpoint=repo_hub.url, cache_dir=cache)
    assert repo_hub.file_bytes() == served  # no weight byte downloaded again


def test_private_repo_needs_a_granted_token(repo_hub: MockHub, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError) as anonymous:
        hf_hub_download("org/private", "config.json", endpoint=repo_hub.url, cache_dir=tmp_path)
    assert anonymous.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError) as other:
        HfApi(endpoint=repo_hub.url, token="hf_other").model_info("org/private")
    assert other.value.response.status_code == 404
    with pytest.raises(HfHubHTTPError) as invalid:
        HfApi(endpoint=repo_hub.url, token="hf_typo").model_info("org/public")
    assert invalid.value.response.status_code == 401
    path = hf_hub_download(
        "org/private",
        "model.safetensors",
        endpoint=repo_hub.url,
        cache_dir=tmp_path,
        token="hf_good",
    )
    assert Path(path).read_bytes() == WEIGHTS
    assert all(
        r.authorized
        for r in repo_hub.requests
        if r.origin == "hub" and r.status < 400 and r.path.startswith("/org/private")
    )


def test_gated_repo_lists_openly_but_downloads_need_access(
    repo_hub: MockHub, tmp_path: Path
) -> None:
    api = HfApi(endpoint=repo_hub.url, token=False)
    assert api.model_info("org/gated").gated == "auto"
    with pytest.raises(GatedRepoError) as anonymous:
        hf_hub_download("org/gated", "config.json", endpoint=repo_hub.url, cache_dir=tmp_path)
    assert anonymous.value.response.status_code == 401
    with pytest.raises(GatedRepoError) as denied:
        hf_hub_download(
            "org/gated", "config.json", endpoint=repo_hub.url, cache_dir=tmp_path, token="hf_other"
        )
    assert denied.value.response.status_code == 403


def test_missing_revision_and_entry(repo_hub: MockHub, tmp_path: Path) -> None:
    api = HfApi(endpoint=repo_hub.url, token=False)
    with pytest.raises(RevisionNotFoundError):
        api.model_info("org/public", revision="nope")
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("org/public", "nope.bin", endpoint=repo_hub.url, cache_dir=tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/absent")


def fetch(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    """One request, redirects not followed (http.client: no client library in between)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        conn.request(
            method, f"{parts.path}?{parts.query}" if parts.query else parts.path, headers=headers
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_resolve_headers_and_ranges(repo_hub: MockHub) -> None:
    sha = repo_hub.repos["org/public"].head()
    status, head, _ = fetch(f"{repo_hub.url}/org/public/resolve/main/model.safetensors", "HEAD")
    assert status == 302 and head["X-Repo-Commit"] == sha
    assert head["X-Linked-Size"] == str(len(WEIGHTS))
    assert head["X-Linked-Etag"] == f'"{hashlib.sha256(WEIGHTS).hexdigest()}"'
    location = head["Location"]
    assert location.startswith(repo_hub.cdn_url)
    status, headers, body = fetch(location, Range="bytes=10-19")
    assert status == 206 and body == WEIGHTS[10:20]
    assert headers["Content-Range"] == f"bytes 10-19/{len(WEIGHTS)}"
    assert fetch(location, Range="bytes=-5")[2] == WEIGHTS[-5:]
    assert fetch(location, Range=f"bytes={len(WEIGHTS)}-")[0] == 416
    status, headers, body = fetch(f"{repo_hub.url}/org/public/resolve/{sha}/config.json")
    assert headers["ETag"] == f'"{git_blob_sha1(body)}"' and headers["Accept-Ranges"] == "bytes"
    assert repo_hub.file_bytes(contains="/cdn/") == 10 + 5
    assert repo_hub.count("HEAD", contains="model.safetensors") == 1


def test_fault_switches(repo_hub: MockHub) -> None:
    api = HfApi(endpoint=repo_hub.url, token=False)
    repo_hub.fail_next(1, 503, contains="/api/models/org/public")
    with pytest.raises(HfHubHTTPError) as failed:
        api.model_info("org/public")
    assert failed.value.response.status_code == 503
    assert api.model_info("org/public").sha  # the fault was used up
    repo_hub.require_token = "hf_gate"
    with pytest.raises(HfHubHTTPError) as refused:
        api.model_info("org/public")
    assert refused.value.response.status_code == 401
    repo_hub.known_tokens.add("hf_gate")
    assert HfApi(endpoint=repo_hub.url, token="hf_gate").model_info("org/public").sha


def test_directory_repo_and_hf_endpoint_env_in_a_subprocess(tmp_path: Path) -> None:
    root = tmp_path / "repos"
    (root / "acme" / "tiny" / "sub").mkdir(parents=True)
    (root / "acme" / "tiny" / "config.json").write_text("{}")
    (root / "acme" / "tiny" / "sub" / "weights.bin").write_bytes(b"w" * 2048)
    first, second = MockHub(root), MockHub(root)
    assert first.repos["acme/tiny"].head() == second.repos["acme/tiny"].head()  # deterministic sha
    script = (
        "import sys; from huggingface_hub import snapshot_download;"
        "print(snapshot_download('acme/tiny', cache_dir=sys.argv[1]))"
    )
    env = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": str(tmp_path / "home")}
    env.pop("HF_TOKEN", None)
    with first as hub:
        env["HF_ENDPOINT"] = hub.url  # read by huggingface_hub at import: a fresh process
        out = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "c")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    snapshot = Path(out.stdout.strip().splitlines()[-1])
    assert snapshot.name == first.repos["acme/tiny"].head()
    assert (snapshot / "sub" / "weights.bin").read_bytes() == b"w" * 2048


def test_cli_serves_a_directory(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"x": 1}')
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fixtures.hf_hub",
            "--repo",
            f"demo/m={tmp_path / 'model'}",
            "--token",
            "hf_cli",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip().removeprefix("HF_ENDPOINT=")
        info = HfApi(endpoint=endpoint, token="hf_cli").model_info("demo/m", files_metadata=True)
        assert [s.rfilename for s in info.siblings] == ["config.json"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
