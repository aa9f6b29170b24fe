"""Push to an htpasswd-protected registry, pull back by digest, run it; failures say what is wrong."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from packager.engine import BuildRequest, Engine, open_engine
from packager.errors import RegistryError
from packager.registry import (
    RegistryFailure,
    RegistryOperationError,
    TransferEvent,
    login,
    parse_reference,
    pull,
    push,
)
from tests.fixtures.docker_env import (
    DockerCleanup,
    RegistryEnv,
    free_port,
    run_in_image,
    unique,
    write_context,
)

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def engine(docker_info: Any) -> Engine:
    return open_engine(docker_info)


def build_marker_image(engine: Engine, base_image: str, directory: Path, cleanup: DockerCleanup,
                       extra: str = "") -> tuple[str, str]:
    marker = uuid.uuid4().hex
    context = write_context(directory,
                            f"FROM {base_image}\nRUN echo {marker} > /marker\n{extra}CMD [\"cat\", \"/marker\"]\n")
    image = engine.build(BuildRequest(context, tag=cleanup.image(f"{unique()}:local")))
    cleanup.image(image.id)
    return image.id, marker


def test_push_with_auth_pull_by_digest_and_run(
    engine: Engine, base_image: str, registry: RegistryEnv, docker_client: Any, docker_cleanup: DockerCleanup,
    tmp_path: Path
) -> None:
    image_id, marker = build_marker_image(engine, base_image, tmp_path, docker_cleanup)
    target = registry.repo(f"pack-test/{unique('model')}:v1")
    events: list[TransferEvent] = []
    pushed = push(image_id, target, username=registry.username, password=registry.password, progress=events.append)
    assert pushed.digest.startswith("sha256:") and len(pushed.digest) == 71
    assert pushed.reference == parse_reference(target).with_digest(pushed.digest)
    assert pushed.credentials_source == "explicit"
    assert any(e.status == "Pushed" for e in events)

    # Forget the image locally, then get it back by digest alone.
    docker_client.api.remove_image(image_id, force=True)
    pulled = pull(pushed.pinned, username=registry.username, password=registry.password)
    docker_cleanup.image(pulled.id)
    assert pulled.id == image_id  # same config digest: the very same image
    assert pulled.digest == pushed.digest
    assert run_in_image(docker_client, pushed.pinned, []).strip() == marker


def test_push_with_credentials_from_docker_config(
    engine: Engine, base_image: str, registry: RegistryEnv, docker_cleanup: DockerCleanup, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import base64

    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {registry.address: {"auth": token}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    image_id, _ = build_marker_image(engine, base_image, tmp_path / "ctx", docker_cleanup)
    pushed = push(image_id, registry.repo(f"pack-test/{unique('cfg')}:v1"))
    assert pushed.credentials_source and "config.json" in pushed.credentials_source


def test_wrong_password_fails_clearly(
    engine: Engine, base_image: str, registry: RegistryEnv, docker_cleanup: DockerCleanup, tmp_path: Path
) -> None:
    image_id, _ = build_marker_image(engine, base_image, tmp_path, docker_cleanup)
    with pytest.raises(RegistryOperationError) as info:
        push(image_id, registry.repo("pack-test/wrong:v1"), username=registry.username, password="not-the-password")
    assert info.value.kind is RegistryFailure.AUTH
    assert f"{registry.address} refused the login for user {registry.username}" in str(info.value)
    assert "not-the-password" not in str(info.value)

    with pytest.raises(RegistryOperationError) as login_info:
        login(registry.address, username=registry.username, password="not-the-password")
    assert login_info.value.kind is RegistryFailure.AUTH
    assert login(registry.address, username=registry.username, password=registry.password).username == registry.username


def test_anonymous_push_says_credentials_are_missing(
    engine: Engine, base_image: str, registry: RegistryEnv, docker_cleanup: DockerCleanup, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-config"))
    image_id, _ = build_marker_image(engine, base_image, tmp_path, docker_cleanup)
    with pytest.raises(RegistryOperationError, match="no credentials were found") as info:
        push(image_id, registry.repo("pack-test/anon:v1"))
    assert info.value.hint and f"docker login {registry.address}" in info.value.hint


def test_unreachable_registry_and_missing_repository(
    engine: Engine, base_image: str, registry: RegistryEnv, docker_cleanup: DockerCleanup, tmp_path: Path
) -> None:
    image_id, _ = build_marker_image(engine, base_image, tmp_path, docker_cleanup)
    nowhere = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryOperationError) as info:
        push(image_id, f"{nowhere}/pack-test/m:v1", username="u", password="p")
    assert info.value.kind is RegistryFailure.UNREACHABLE
    assert f"cannot reach registry {nowhere}" in str(info.value)

    with pytest.raises(RegistryOperationError) as missing:
        pull(registry.repo(f"pack-test/{unique('absent')}:v1"), username=registry.username, password=registry.password)
    assert missing.value.kind is RegistryFailure.NOT_FOUND

    with pytest.raises(RegistryOperationError) as local:
        push("pack-test-no-such-local-image:v1", registry.repo("pack-test/x:v1"), username="u", password="p")
    assert local.value.kind is RegistryFailure.LOCAL_IMAGE

    with pytest.raises(RegistryError, match="cannot push to"):
        push(image_id, registry.repo("pack-test/x@sha256:" + "0" * 64))


class _Interrupt(Exception):
    pass


def test_interrupted_push_can_be_repeated(
    engine: Engine, base_image: str, registry: RegistryEnv, docker_client: Any, docker_cleanup: DockerCleanup,
    tmp_path: Path
) -> None:
    # A 48 MB incompressible layer, so the first push is still uploading when it is cut off.
    image_id, marker = build_marker_image(
        engine, base_image, tmp_path, docker_cleanup, extra="RUN head -c 48000000 /dev/urandom > /blob\n"
    )
    target = registry.repo(f"pack-test/{unique('resume')}:v1")
    seen: list[TransferEvent] = []

    def cut_off(event: TransferEvent) -> None:
        seen.append(event)
        if event.status == "Pushing" and (event.current or 0) > 0:
            raise _Interrupt()  # the push's connection to the engine closes here

    with pytest.raises(_Interrupt):
        push(image_id, target, username=registry.username, password=registry.password, progress=cut_off)
    # The engine abandons a push whose client went away: no manifest reached the registry.
    with pytest.raises(RegistryOperationError) as half:
        pull(target, username=registry.username, password=registry.password)
    assert half.value.kind is RegistryFailure.NOT_FOUND
    pushed = push(image_id, target, username=registry.username, password=registry.password)
    docker_client.api.remove_image(image_id, force=True)
    pulled = pull(pushed.pinned, username=registry.username, password=registry.password)
    docker_cleanup.image(pulled.id)
    assert pulled.id == image_id
    assert run_in_image(docker_client, pushed.pinned, []).strip() == marker
