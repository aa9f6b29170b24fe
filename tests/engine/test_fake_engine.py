"""The FakeEngine test double behaves like the real ones where callers can tell."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager.engine import (
    BuilderKind,
    BuildFailedError,
    BuildRequest,
    Engine,
    FakeEngine,
    MissingCapabilityError,
    RunRequest,
    StepEventKind,
)
from packager.engine.features import CLASSIC_FEATURES
from packager.errors import EngineError

DOCKERFILE = """\
FROM pack-base:bookworm-py311
RUN --mount=type=secret,id=token cat /run/secrets/token
COPY requirements.txt /app/requirements.txt
RUN pip install -r /app/requirements.txt
COPY model /app/model
CMD ["python3"]
"""


def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "requirements.txt").write_text("numpy\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.py").write_text("class Model: ...\n")
    (tmp_path / "token").write_text("s3cret")
    return tmp_path


def test_fake_is_an_engine_and_imitates_layer_cache(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    fake = FakeEngine()
    assert isinstance(fake, Engine)
    events = []
    first = fake.build(BuildRequest(ctx, tag="m:1", secrets={"token": ctx / "token"}), progress=events.append)
    assert len(first.built_steps) == 5 and first.cached_steps == ()
    assert any(e.kind is StepEventKind.LOG and "pip install" in (e.line or "") for e in events)

    (ctx / "model" / "model.py").write_text("class Model: 'edited'\n")
    second = fake.build(BuildRequest(ctx, tag="m:2", secrets={"token": ctx / "token"}))
    assert [s.split("] ", 1)[1] for s in second.built_steps] == ["COPY model /app/model", 'CMD ["python3"]']
    assert second.id != first.id
    assert fake.image("m:2") == second
    assert fake.builds[-1].secret_names == ("token",)


def test_fake_runs_the_same_preflight(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    with pytest.raises(EngineError, match="mounts build secret 'token'"):
        FakeEngine().build(BuildRequest(ctx, tag="m:1"))
    classic = FakeEngine(features=CLASSIC_FEATURES, builder=BuilderKind.CLASSIC)
    with pytest.raises(MissingCapabilityError) as info:
        classic.build(BuildRequest(ctx, tag="m:1", secrets={"token": ctx / "token"}))
    assert "secret mounts (RUN --mount=type=secret)" in info.value.missing


def test_fake_failure_and_run(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    fake = FakeEngine(fail_on="pip install", fail_output=("ERROR: no numpy",))
    with pytest.raises(BuildFailedError) as info:
        fake.build(BuildRequest(ctx, secrets={"token": ctx / "token"}))
    assert info.value.step and "pip install" in info.value.step
    assert info.value.log_tail == ["ERROR: no numpy"]

    ok = FakeEngine()
    image = ok.build(BuildRequest(ctx, tag="m:1", secrets={"token": ctx / "token"}))
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "api_key").write_text("k")
    container = ok.run(RunRequest(image.id, port=8123, secrets_dir=secrets, name="m"))
    assert container.url == "http://127.0.0.1:8123"
    assert container.secrets == {"/secrets/api_key": str(secrets / "api_key")}
    with pytest.raises(EngineError, match="already exists"):
        ok.run(RunRequest(image.id, name="m"))
    assert ok.run(RunRequest(image.id, name="m", replace=True)).name == "m"


def test_fake_records_gpu_requests_and_refuses_like_docker_without_nvidia(tmp_path: Path) -> None:
    from packager.engine import GpuRequest, GpuUnavailableError

    ctx = context(tmp_path)
    fake = FakeEngine(gpu_count=2)
    image = fake.build(BuildRequest(ctx, tag="m:1", secrets={"token": ctx / "token"}))
    assert fake.run(RunRequest(image.id, name="cpu")).gpus is None
    assert fake.run(RunRequest(image.id, name="all", gpus=GpuRequest())).gpus == GpuRequest(None)
    assert fake.run(RunRequest(image.id, name="two", gpus=GpuRequest(2))).gpus == GpuRequest(2)
    with pytest.raises(GpuUnavailableError, match="nvidia-container-cli: device error"):
        fake.run(RunRequest(image.id, name="three", gpus=GpuRequest(3)))

    no_nvidia = FakeEngine(nvidia_runtime=False)
    image = no_nvidia.build(BuildRequest(ctx, tag="m:1", secrets={"token": ctx / "token"}))
    with pytest.raises(GpuUnavailableError) as info:
        no_nvidia.run(RunRequest(image.id, name="gpu", gpus=GpuRequest()))
    # Docker 20.10's own answer when no NVIDIA runtime is installed (tests/engine/test_docker_run.py
    # checks the real engine says the same).
    assert info.value.detail == 'could not select device driver "" with capabilities: [[gpu]]'
    assert "all GPUs" in info.value.message and "NVIDIA Container Toolkit" in (info.value.hint or "")
    assert no_nvidia.containers == []  # nothing left behind, as the real engine's run removes it
    assert no_nvidia.run(RunRequest(image.id, name="cpu")).gpus is None


def test_fake_pulls_only_what_its_registry_has() -> None:
    from packager.engine import BuiltImage

    base = BuiltImage("sha256:" + "b" * 64, ("team/base:1",), 10, user="appuser")
    fake = FakeEngine(registry={"team/base:1": base})
    assert fake.image("team/base:1") is None
    assert fake.pull("team/base:1").user == "appuser"
    assert fake.image("team/base:1") == base and fake.pulls == ["team/base:1"]
    with pytest.raises(EngineError, match="cannot pull other/base:2"):
        fake.pull("other/base:2")
