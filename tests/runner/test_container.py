"""runner.start with a FakeEngine (no Docker): the GPU request follows resources.accelerator, an
engine without the NVIDIA runtime stops the run with what to do, and --cpu runs without GPUs.

Readiness is real HTTP: a local server answers the route runner.start waits for on the port the
(fake) container was given, as the model server inside a real container would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from packager import api, runner
from packager.engine import BuiltImage, FakeEngine, GpuRequest
from packager.errors import EngineError

IMAGE = "sha256:" + "c" * 64
MODEL = "class Model:\n    def predict(self, x):\n        return x\n"


def _plan(tmp_path: Path, resources: str):
    root = tmp_path / "truss"
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.py").write_text(MODEL)
    (root / "config.yaml").write_text(f"model_name: gpu-model\nresources:\n{resources}")
    return api.plan(root)[1]


def _engine(**kwargs) -> FakeEngine:
    fake = FakeEngine(**kwargs)
    fake.images[IMAGE] = BuiltImage(IMAGE, (), 1)
    return fake


@pytest.mark.parametrize(("resources", "expected"), [
    ("  accelerator: H100\n", GpuRequest(None)),  # every GPU, as `docker run --gpus all`
    ("  accelerator: H100:1\n", GpuRequest(None)),  # the same config as `H100` (Truss writes it so)
    ("  accelerator: A10G:2\n", GpuRequest(2)),
    ("  accelerator:\n    accelerator: L4\n    count: 4\n", GpuRequest(4)),
    ("  cpu: \"2\"\n", None),
    ("  use_gpu: true\n", None),  # ignored without an accelerator, as by Truss (a load warning)
])
def test_gpu_request_follows_the_accelerator(tmp_path: Path, ready_port: int, resources: str,
                                             expected: GpuRequest | None) -> None:
    fake = _engine(gpu_count=4)
    running = runner.start(IMAGE, _plan(tmp_path, resources), port=ready_port, name="m", engine=fake, timeout=10)
    assert running.container.gpus == expected
    assert fake.containers[-1].gpus == expected
    assert running.url == f"http://127.0.0.1:{ready_port}"


def test_no_nvidia_runtime_stops_with_the_accelerator_and_the_fix(tmp_path: Path, ready_port: int) -> None:
    plan = _plan(tmp_path, "  accelerator: A10G:2\n")
    fake = _engine(nvidia_runtime=False)
    with pytest.raises(EngineError) as info:
        runner.start(IMAGE, plan, port=ready_port, name="m", engine=fake, timeout=10)
    message, hint = info.value.message, info.value.hint or ""
    assert "gpu-model asks for accelerator A10G:2 (resources.accelerator)" in message
    assert "2 GPUs" in message and 'could not select device driver "" with capabilities: [[gpu]]' in message
    assert "NVIDIA Container Toolkit" in hint and "`pack run --cpu`" in hint
    assert fake.containers == []

    running = runner.start(IMAGE, plan, port=ready_port, name="m", engine=fake, timeout=10, cpu=True)
    assert running.container.gpus is None and running.container.status() == "running"


def test_cpu_plan_runs_on_an_engine_without_nvidia(tmp_path: Path, ready_port: int) -> None:
    fake = _engine(nvidia_runtime=False)
    running = runner.start(IMAGE, _plan(tmp_path, "  cpu: \"1\"\n"), port=ready_port, name="m", engine=fake,
                           timeout=10)
    assert running.container.gpus is None
