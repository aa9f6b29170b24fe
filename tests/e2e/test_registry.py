"""`pack push` to the local registry (htpasswd auth), pull back by digest, run, predict; a wrong
password fails with a clear message, a non-zero exit and no traceback.

The truss is the echo sample with a motto made for this run: its image is unique to the test, so
once the local tags are gone the engine really lacks it and the pull has to fetch it, and the
answer proves the container runs the pushed image.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from packager import api, runner
from packager.plan.model import BuildOptions
from packager.registry import TransferEvent, pull
from tests.e2e.conftest import BASE_IMAGE, Hub, Resources, pack_cli, start
from tests.fixtures.docker_env import RegistryEnv, unique

pytestmark = pytest.mark.docker

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)


@dataclass
class Truss:
    path: Path
    motto: str
    image_ids: set[str]  # images the tests produced from it, untagged at the end


@pytest.fixture(scope="module")
def truss(samples: Path, hub: Hub, docker_client: Any) -> Iterator[Truss]:
    path = samples / "echo"
    motto = f"pushed and pulled back ({uuid.uuid4().hex})"
    (path / "data" / "motto.txt").write_text(motto + "\n")
    made = Truss(path, motto, set())
    yield made
    import docker

    # `pack push` leaves its default build tag (echo:<context digest>) and the registry tag; the
    # pull adds the digest reference. All name only this run's unique image.
    for image_id in made.image_ids:
        with contextlib.suppress(docker.errors.APIError):
            attrs = docker_client.api.inspect_image(image_id)
            for ref in (attrs.get("RepoTags") or []) + (attrs.get("RepoDigests") or []):
                with contextlib.suppress(docker.errors.APIError):
                    docker_client.api.remove_image(ref)


def registry_manifest(registry: RegistryEnv, repository: str, digest: str, *, auth: bool) -> tuple[int, bytes]:
    """GET /v2/<repository>/manifests/<digest> straight from the registry."""
    headers = {"Accept": ", ".join(MANIFEST_TYPES)}
    if auth:
        token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(f"http://{registry.address}/v2/{repository}/manifests/{digest}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def push_cli(truss: Path, image: str, username: str, password: str) -> Any:
    return pack_cli("push", str(truss), "--image", image, "--username", username, "--password-stdin",
                    "--base-image", BASE_IMAGE, "--json", input=password + "\n")


def test_push_with_auth_pull_by_digest_and_run(truss: Truss, registry: RegistryEnv, docker_client: Any,
                                               resources: Resources) -> None:
    import docker

    target = registry.repo(f"e2e/{unique('echo')}:v1")
    pushed = push_cli(truss.path, target, registry.username, registry.password)
    assert pushed.returncode == 0, pushed.stderr
    result = json.loads(pushed.stdout.strip().splitlines()[-1])
    truss.image_ids.add(result["image_id"])
    assert result["digest"].startswith("sha256:") and len(result["digest"]) == 71
    assert result["pinned"] == f"{target.rsplit(':', 1)[0]}@{result['digest']}"

    # The registry holds exactly that manifest, behind auth.
    repository = target.split("/", 1)[1].rsplit(":", 1)[0]
    assert registry_manifest(registry, repository, result["digest"], auth=False)[0] == 401
    status, body = registry_manifest(registry, repository, result["digest"], auth=True)
    assert status == 200 and "sha256:" + hashlib.sha256(body).hexdigest() == result["digest"]

    # Forget the image locally: every tag of it goes (all of them were made by this test).
    tags = docker_client.api.inspect_image(result["image_id"])["RepoTags"]
    assert target in tags
    for tag in tags:
        docker_client.api.remove_image(tag)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.api.inspect_image(result["image_id"])

    # Back by digest alone (a pinned reference, no tag), with the same credentials.
    events: list[TransferEvent] = []
    pulled = pull(result["pinned"], username=registry.username, password=registry.password,
                  progress=events.append)
    truss.image_ids.add(pulled.id)
    assert pulled.id == result["image_id"]  # the very same image (same config digest)
    assert pulled.digest == result["digest"]
    assert f"Digest: {result['digest']}" in {e.status for e in events}
    # (Its layers usually say "Already exists": the engine's build cache still holds them.)
    assert {e.status for e in events if e.layer and e.status in ("Already exists", "Pull complete")}

    _, plan = api.plan(truss.path, BuildOptions(base_image=BASE_IMAGE))
    running = start(result["pinned"], plan, resources)
    try:
        answer = runner.predict(running.url, {"text": "from the registry"}, timeout=60)
    finally:
        running.container.remove()
    assert answer == {"echo": {"text": "from the registry"}, "greeting": "hello", "motto": truss.motto}


def test_wrong_password_fails_clearly(truss: Truss, registry: RegistryEnv, docker_client: Any) -> None:
    target = registry.repo(f"e2e/{unique('echo')}:v1")
    failed = push_cli(truss.path, target, registry.username, "not-the-password-" + uuid.uuid4().hex)
    with contextlib.suppress(Exception):
        truss.image_ids.add(docker_client.api.inspect_image(target)["Id"])  # push tags before it pushes
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "Traceback" not in output and "internal error" not in output
    assert f"{registry.address} refused the login for user {registry.username}" in failed.stderr, failed.stderr
    assert "check the username and password" in failed.stderr
    # --json: the failure in the push contract, nothing else on stdout (packager/cli/json_results.py).
    (line,) = failed.stdout.strip().splitlines()
    result = json.loads(line)
    assert result["schema"] == "pack.push/v1" and result["ok"] is False and "digest" not in result
    assert result["error"]["exit_code"] == failed.returncode == 1
    assert "refused the login" in result["error"]["message"]
