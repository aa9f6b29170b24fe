"""Running a built image on the host network: port, env, read-only secrets, volumes, readiness."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

from packager.engine import BuildKitEngine, BuildRequest, ClassicEngine, Engine, RunRequest, wait_ready
from packager.errors import EngineError
from tests.fixtures.docker_env import DockerCleanup, free_port, unique, write_context

pytestmark = pytest.mark.docker

# Serves /www on $INFERENCE_SERVER_PORT after recording what the container sees.
SERVER = """\
set -e
mkdir -p /www
cat /secrets/api_key > /www/secret
ls /secrets > /www/secrets-listing
(echo x >> /secrets/api_key && echo writable || echo read-only) > /www/secret-mode 2>/dev/null
echo "$GREETING" > /www/env
date +%s%N >> /cache/starts
wc -l < /cache/starts > /www/starts
exec python3 -m http.server "$INFERENCE_SERVER_PORT" --bind 127.0.0.1 --directory /www
"""


@pytest.fixture(scope="module")
def server_image(docker_info: Any, base_image: str, tmp_path_factory: pytest.TempPathFactory, docker_client: Any):
    from packager.engine import open_engine

    engine: Engine = open_engine(docker_info)
    context = write_context(
        tmp_path_factory.mktemp("server"),
        f'FROM {base_image}\nCOPY serve.sh /serve.sh\nCMD ["sh", "/serve.sh"]\n',
        {"serve.sh": SERVER},
    )
    tag = f"{unique()}:server"
    engine.build(BuildRequest(context, tag=tag))
    yield engine, tag
    docker_client.api.remove_image(tag, force=True)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode().strip()


def test_run_on_host_network_with_secrets_env_and_volume(
    server_image: tuple[Engine, str], docker_cleanup: DockerCleanup, tmp_path: Path
) -> None:
    engine, tag = server_image
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "api_key").write_text("k-123")
    (secrets / "other").write_text("o")
    (secrets / ".hidden").write_text("not a secret")
    volume = unique("pack-test-cache")
    docker_cleanup.volumes.append(volume)
    name = docker_cleanup.container(unique())
    port = free_port()

    container = engine.run(RunRequest(tag, port=port, env={"GREETING": "hi"}, secrets_dir=secrets,
                                      volumes={volume: "/cache"}, name=name))
    assert container.url == f"http://127.0.0.1:{port}"
    seconds = wait_ready(container.url + "/env", 30, container=container)
    assert seconds < 30
    assert fetch(f"{container.url}/env") == "hi"
    assert fetch(f"{container.url}/secret") == "k-123"
    assert fetch(f"{container.url}/secrets-listing").split() == ["api_key", "other"]
    assert fetch(f"{container.url}/secret-mode") == "read-only"
    assert (secrets / "api_key").read_text() == "k-123"
    assert fetch(f"{container.url}/starts") == "1"

    # A second container with the same name replaces the first; the named volume survives.
    with pytest.raises(EngineError, match="already exists"):
        engine.run(RunRequest(tag, port=port, name=name))
    container = engine.run(RunRequest(tag, port=port, env={"GREETING": "again"}, secrets_dir=secrets,
                                      volumes={volume: "/cache"}, name=name, replace=True))
    wait_ready(container.url + "/env", 30, container=container)
    assert fetch(f"{container.url}/starts") == "2"
    container.stop(timeout_s=2)
    assert container.status() == "exited"


def test_wait_ready_stops_early_when_the_container_dies(
    server_image: tuple[Engine, str], docker_cleanup: DockerCleanup
) -> None:
    engine, tag = server_image
    name = docker_cleanup.container(unique())
    failing = ("sh", "-c", "echo model failed to load; exit 4")
    container = engine.run(RunRequest(tag, port=free_port(), name=name, command=failing))
    with pytest.raises(EngineError) as info:
        wait_ready(f"{container.url}/", 60, container=container)
    assert "exited (code 4)" in str(info.value)
    assert "model failed to load" in str(info.value)


def test_run_missing_image_is_clear(server_image: tuple[Engine, str]) -> None:
    engine, _ = server_image
    with pytest.raises(EngineError, match="not found locally"):
        engine.run(RunRequest("pack-test-no-such-image:never"))


def test_both_backends_are_engines(buildkit_engine: BuildKitEngine, classic_engine: ClassicEngine) -> None:
    assert isinstance(buildkit_engine, Engine) and isinstance(classic_engine, Engine)
    assert buildkit_engine.info.buildkit and not classic_engine.info.buildkit
    assert classic_engine.info.missing  # says what is lost


def _engine_has_nvidia(docker_client: Any) -> bool:
    import shutil

    runtimes = docker_client.info().get("Runtimes") or {}
    return "nvidia" in runtimes or shutil.which("nvidia-container-runtime-hook") is not None


def test_gpu_request_without_nvidia_runtime_is_refused_and_leaves_nothing(
    server_image: tuple[Engine, str], docker_client: Any, docker_cleanup: DockerCleanup
) -> None:
    from packager.engine import GpuRequest, GpuUnavailableError

    if _engine_has_nvidia(docker_client):
        pytest.skip("this engine has the NVIDIA runtime; the refusal needs one without it")
    engine, tag = server_image
    for gpus in (GpuRequest(), GpuRequest(2)):
        name = docker_cleanup.container(unique())
        with pytest.raises(GpuUnavailableError) as info:
            engine.run(RunRequest(tag, port=free_port(), name=name, gpus=gpus))
        # What Docker 20.10 answers (HTTP 500 at container start) with no NVIDIA runtime.
        assert info.value.detail == 'could not select device driver "" with capabilities: [[gpu]]'
        assert str(gpus) in info.value.message
        # The engine had created the container before refusing to start it: run removed it.
        assert docker_client.containers.list(all=True, filters={"name": name}) == []
