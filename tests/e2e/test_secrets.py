"""Secrets used during a build leave no trace: an HF token for a private repo (bake mode) and a
build.secret_to_path_mapping secret read by a build_commands line.

Both values are long and random (made for this run), so finding one anywhere means a leak. They
are looked for in every member of every layer tarball of `docker save`, the image config, the
history (`docker history --no-trunc` and the API), the BuildKit build cache on disk, the build
output, the rendered context and pack.lock. And the build did use them: the private files are in
the image (byte for byte) and the build_commands line, which only succeeds when the mounted
secret hashes to the expected value, left its marker file.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import os
import secrets as random_secrets
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from packager.builder import BuildResult
from packager.engine import StepEvent
from tests.e2e.conftest import HF_HUB_CACHE, Hub, Resources, build
from tests.fixtures.docker_env import unique

pytestmark = pytest.mark.docker

DOCKER_ROOT = Path("/var/lib/docker")
BUILDKIT_DIR = DOCKER_ROOT / "buildkit"


@dataclass
class SecretBuild:
    result: BuildResult
    truss: Path
    hf_token: str
    build_secret: str
    repo_id: str
    sha: str
    private_files: dict[str, bytes]
    events: list[StepEvent] = field(default_factory=list)
    hub_requests: list[Any] = field(default_factory=list)

    @property
    def needles(self) -> dict[str, bytes]:
        return {"HF token": self.hf_token.encode(), "build secret": self.build_secret.encode()}

    def with_control(self, control: str | bytes) -> dict[str, bytes]:
        """The secrets plus a positive control: a value that must be found by the same scan,
        so that finding no secret means something."""
        return {**self.needles, CONTROL: control.encode() if isinstance(control, str) else control}

    @property
    def marker(self) -> str:
        """Random text inside the private repo's config.json: it is in the image and the cache."""
        return json.loads(self.private_files["config.json"])["marker"]

    @property
    def secret_hash(self) -> str:
        """sha256 of the build secret: in the build_commands line, so in the history."""
        return hashlib.sha256(self.build_secret.encode()).hexdigest()


CONTROL = "control"


def split(findings: list[str]) -> tuple[list[str], list[str]]:
    """(leaks, positive-control hits) of findings named '<needle> in <where>'."""
    control = [f for f in findings if f.startswith(CONTROL + " ")]
    return [f for f in findings if not f.startswith(CONTROL + " ")], control


@pytest.fixture(scope="module")
def secret_build(hub: Hub, resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretBuild]:
    hf_token = "hf_" + random_secrets.token_hex(24)
    build_secret = "bs-" + random_secrets.token_hex(32)
    repo_id = f"e2e-private/{unique('model')}"
    # Fresh random bytes: nothing in the engine's weight cache can stand in for them, so the
    # build has to fetch them from the private repo, with the token.
    files = {
        "config.json": json.dumps({"marker": random_secrets.token_hex(8)}).encode(),
        "model.safetensors": os.urandom(2 * 1024 * 1024),
    }
    repo = hub.hub.add_repo(repo_id, private=True, tokens={hf_token})
    sha = repo.commit(files)

    truss = tmp_path_factory.mktemp("secrets") / "private-bake"
    (truss / "model").mkdir(parents=True)
    (truss / "model" / "model.py").write_text(
        "class Model:\n    def predict(self, model_input):\n        return model_input\n")
    expected = hashlib.sha256(build_secret.encode()).hexdigest()
    (truss / "config.yaml").write_text(
        "model_name: e2e-private-bake\n"
        "python_version: py311\n"
        "requirements: []\n"
        "secrets:\n  hf_access_token: null\n"
        "build:\n  secret_to_path_mapping:\n    build_secret: /run/secrets/build_secret\n"
        "build_commands:\n"
        # Compares a hash, so the Dockerfile (and so the history) never holds the value itself.
        f"  - test \"$(sha256sum < /run/secrets/build_secret | cut -d' ' -f1)\" = {expected} && echo ok > /opt/used\n"
        "model_cache:\n"
        f"  - repo_id: {repo_id}\n    revision: main\n    use_volume: false\n"
    )
    events: list[StepEvent] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_TOKEN", hf_token)
        mp.setenv("TRUSS_SECRET_build_secret", build_secret)
        hub.hub.reset_stats()
        result = build(truss, resources.tag("private-bake"), events=events)
        requests = list(hub.hub.requests)
    yield SecretBuild(result, truss, hf_token, build_secret, repo_id, sha, files, events, requests)


# --- byte scanning -----------------------------------------------------------------------------
def scan_stream(stream: io.BufferedIOBase, needles: dict[str, bytes], chunk: int = 8 << 20) -> set[str]:
    """Names of the needles found anywhere in the stream (also across chunk boundaries)."""
    found: set[str] = set()
    keep = max(len(n) for n in needles.values()) - 1
    tail = b""
    while data := stream.read(chunk):
        window = tail + data
        found.update(name for name, needle in needles.items() if needle in window)
        tail = window[-keep:]
    return found


def scan_bytes(data: bytes, needles: dict[str, bytes]) -> set[str]:
    return {name for name, needle in needles.items() if needle in data}


def scan_layer_tar(layer: io.BufferedIOBase, where: str,
                   needles: dict[str, bytes]) -> tuple[list[str], dict[str, bytes | str]]:
    """Leaks in one layer tarball, member by member (names, link targets, PAX headers and
    content); also returns, by path, the content of every regular file and the target (a str)
    of every symlink, for the caller's checks."""
    leaks: list[str] = []
    contents: dict[str, bytes | str] = {}
    with tarfile.open(fileobj=layer, mode="r:") as tar:
        for member in tar:
            header = " ".join([member.name, member.linkname, json.dumps(member.pax_headers)]).encode()
            for name in scan_bytes(header, needles):
                leaks.append(f"{name} in the header of {where}:{member.name}")
            if member.issym():
                contents[member.name] = member.linkname
            if member.isfile():
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                contents[member.name] = data
                for name in scan_bytes(data, needles):
                    leaks.append(f"{name} in {where}:{member.name}")
    return leaks, contents


@dataclass
class SavedImage:
    leaks: list[str]
    layers: list[dict[str, bytes | str]]  # per layer tarball, in manifest order: path -> content or link target
    config: dict


@pytest.fixture(scope="module")
def saved(secret_build: SecretBuild, docker_client: Any) -> SavedImage:
    """`docker save` of the image, every member scanned, every layer tarball opened and every
    member of it scanned."""
    needles = secret_build.with_control(secret_build.marker)
    leaks: list[str] = []
    layer_contents: dict[str, dict[str, bytes | str]] = {}
    with tempfile.TemporaryFile() as archive:
        for chunk in docker_client.api.get_image(secret_build.result.image.id):
            archive.write(chunk)
        archive.seek(0)
        with tarfile.open(fileobj=archive, mode="r:") as outer:
            manifest: list[dict] = []
            config: dict = {}
            for member in outer:
                if not member.isfile():
                    continue
                raw = outer.extractfile(member).read()  # type: ignore[union-attr]
                for name in scan_bytes(raw, needles):
                    leaks.append(f"{name} in docker save member {member.name}")
                if member.name == "manifest.json":
                    manifest = json.loads(raw)
                elif member.name.endswith(".json") and "/" not in member.name and member.name != "repositories":
                    config = json.loads(raw)
                if member.name.endswith("layer.tar") or member.name.startswith("blobs/"):
                    try:
                        found, contents = scan_layer_tar(io.BytesIO(raw), member.name, needles)
                    except tarfile.ReadError:
                        continue  # a blob that is not a tarball (an OCI config or manifest)
                    leaks += found
                    layer_contents[member.name] = contents
    assert manifest and manifest[0]["Layers"], "docker save wrote no manifest.json with layers"
    layers = [layer_contents[name] for name in manifest[0]["Layers"]]
    assert len(layers) == len(manifest[0]["Layers"]) >= 5
    return SavedImage(leaks, layers, config)


# --- the build used the secrets ----------------------------------------------------------------
def test_build_used_the_token_and_the_build_secret(secret_build: SecretBuild, saved: SavedImage) -> None:
    merged: dict[str, bytes | str] = {}
    for layer in saved.layers:
        merged.update(layer)

    def read(path: str) -> bytes | str | None:
        found = merged.get(path)
        while isinstance(found, str):  # a symlink (snapshots/<sha>/<file> -> ../../blobs/<etag>)
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), found))
            found = merged.get(path)
        return found

    # The build_commands line passed its hash check against the mounted secret.
    assert read("opt/used") == b"ok\n"
    # The private repo's files, fetched with the token, are in the image byte for byte.
    snapshot = f"{HF_HUB_CACHE}/models--{secret_build.repo_id.replace('/', '--')}/snapshots/{secret_build.sha}"
    for rel, content in secret_build.private_files.items():
        assert read(f"{snapshot.lstrip('/')}/{rel}") == content, rel
    # The repo is private: only requests carrying the token could list and resolve it.
    hub_calls = [r for r in secret_build.hub_requests if r.origin == "hub" and secret_build.repo_id in r.path]
    assert hub_calls and all(r.authorized for r in hub_calls if r.status < 400)
    assert any("/resolve/" in r.path and r.status in (200, 302) for r in hub_calls)


# --- ... and left no trace ---------------------------------------------------------------------
def test_secrets_absent_from_every_layer_tarball(saved: SavedImage) -> None:
    leaks, control = split(saved.leaks)
    assert any(".cache/huggingface" in hit for hit in control), control  # the scan sees file bytes
    assert leaks == []


def test_secrets_absent_from_image_config_and_history(secret_build: SecretBuild, saved: SavedImage,
                                                      docker_client: Any) -> None:
    image = secret_build.result.image.id
    needles = secret_build.with_control(secret_build.secret_hash)
    places = {
        "the image config (docker save)": json.dumps(saved.config).encode(),
        "docker inspect": json.dumps(docker_client.api.inspect_image(image)).encode(),
        "the history (API)": json.dumps(docker_client.api.history(image)).encode(),
    }
    history = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{json .}}", image],
                             capture_output=True, check=True)
    places["docker history --no-trunc"] = history.stdout
    created_by = [json.loads(line)["CreatedBy"] for line in history.stdout.decode().splitlines() if line.strip()]
    # The step that read the secret is in the history; its value is not.
    assert any("sha256sum < /run/secrets/build_secret" in step for step in created_by), created_by
    leaks, control = split([f"{name} in {where}" for where, data in places.items()
                            for name in scan_bytes(data, needles)])
    assert saved.config.get("config"), "no image config found in docker save"
    assert any("docker history" in hit for hit in control), control
    assert leaks == []


def test_secrets_absent_from_build_output_context_and_lock(secret_build: SecretBuild) -> None:
    needles = secret_build.with_control(secret_build.secret_hash)
    findings = [f"{name} in build output {e.name!r} {e.line!r}"
                for e in secret_build.events for name in scan_bytes((e.name + "\n" + (e.line or "")).encode(), needles)]
    roots = [secret_build.result.context.path, secret_build.truss]
    for path in files_under(roots):
        with path.open("rb") as fh:
            findings += [f"{name} in {path}" for name in scan_stream(fh, needles)]
    leaks, control = split(findings)
    assert (secret_build.truss / "pack.lock").is_file()
    assert any("build output" in hit for hit in control) and any("Dockerfile" in hit for hit in control), control
    assert leaks == []


def files_under(roots: Iterable[Path], *, skip_dirs: frozenset[str] = frozenset()) -> Iterator[Path]:
    """Every regular file under roots, staying on each root's filesystem."""
    for root in roots:
        device = os.stat(root).st_dev
        for directory, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in skip_dirs and _same_device(Path(directory, d), device)]
            for name in names:
                path = Path(directory, name)
                try:
                    if stat.S_ISREG(os.lstat(path).st_mode):
                        yield path
                except OSError:
                    continue  # removed meanwhile (another build on this engine)


def _same_device(path: Path, device: int) -> bool:
    try:
        return os.lstat(path).st_dev == device
    except OSError:
        return False


def test_secrets_absent_from_build_cache_on_disk(secret_build: SecretBuild) -> None:
    """The engine's BuildKit state (/var/lib/docker/buildkit: its cache database and content
    store) and, since the engine's BuildKit keeps its cache snapshots and cache mounts (pip,
    weights) as overlay2 layers, the rest of /var/lib/docker too: every regular file's bytes.
    Overlay `merged` directories are skipped: they are mounted views of the diff directories
    that are scanned anyway."""
    if not os.access(BUILDKIT_DIR, os.R_OK | os.X_OK):
        pytest.skip(f"{BUILDKIT_DIR} is not readable by this user (the engine's build cache needs root)")
    needles = secret_build.with_control(secret_build.marker)
    findings: list[str] = []
    scanned = {"buildkit": 0, "other": 0}
    for path in files_under([DOCKER_ROOT], skip_dirs=frozenset({"merged"})):
        try:
            with path.open("rb") as fh:
                found = scan_stream(fh, needles)
        except OSError:
            continue  # removed meanwhile (another build on this engine)
        scanned["buildkit" if BUILDKIT_DIR in path.parents else "other"] += 1
        findings += [f"{name} in {path}" for name in found]
    leaks, control = split(findings)
    assert scanned["buildkit"] > 0 and scanned["other"] > 0, scanned
    # The private files sit in the build cache's snapshots: the scan reads them.
    assert any("/overlay2/" in hit for hit in control), control
    assert leaks == []
