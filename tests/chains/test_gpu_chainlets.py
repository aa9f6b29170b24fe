"""`pack chains run` asks the engine for each chainlet's GPUs: Compute(gpu=..., gpu_count=...) ->
the chainlet truss's resources.accelerator -> its plan (CUDA runtime base) -> runner.start's GPU
request, refused with the fix on an engine without the NVIDIA runtime (FakeEngine, no Docker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chains.framework import registry
from packager import api, runner
from packager.chains_codegen import render_chain
from packager.engine import BuiltImage, FakeEngine, GpuRequest
from packager.errors import EngineError

CHAIN = '''\
import truss_chains as chains


class Embedder(chains.ChainletBase):
    remote_config = chains.RemoteConfig(compute=chains.Compute(gpu="L4", gpu_count=2))

    async def run_remote(self, text: str) -> int:
        return len(text)


@chains.mark_entrypoint
class Front(chains.ChainletBase):
    remote_config = chains.RemoteConfig(compute=chains.Compute(gpu="A10G"))

    def __init__(self, embedder: Embedder = chains.depends(Embedder)) -> None:
        self._embedder = embedder

    async def run_remote(self, text: str) -> int:
        return await self._embedder.run_remote(text)
'''


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    # Module-scoped, so outside the per-test registry isolation: its chainlets (Embedder, Front)
    # are forgotten here, or a later test's chain with the same class names would be refused.
    by_name, descriptors = dict(registry.by_name), dict(registry.descriptors)
    source = tmp_path_factory.mktemp("chain") / "gpu_chain.py"
    source.write_text(CHAIN)
    try:
        chain = render_chain(source, tmp_path_factory.mktemp("out"))
        yield {c.name: api.plan(c.path)[1] for c in chain.chainlets}
    finally:
        registry.by_name.clear()
        registry.by_name.update(by_name)
        registry.descriptors.clear()
        registry.descriptors.update(descriptors)


def test_each_chainlet_requests_its_own_gpus(plans: dict) -> None:
    assert set(plans) == {"Embedder", "Front"}
    assert str(plans["Embedder"].accelerator) == "L4:2"
    assert runner.gpu_request(plans["Embedder"]) == GpuRequest(2)
    assert runner.gpu_request(plans["Front"]) == GpuRequest(None)  # A10G: every GPU, as `--gpus all`
    assert runner.gpu_request(plans["Front"], cpu=True) is None  # `pack chains run --cpu`
    for plan in plans.values():
        assert plan.base.cuda and plan.base.image.startswith("baseten/truss-server-base:")


def test_a_gpu_chainlet_on_an_engine_without_nvidia_stops_with_the_fix(plans: dict) -> None:
    image = "sha256:" + "e" * 64
    fake = FakeEngine(nvidia_runtime=False)
    fake.images[image] = BuiltImage(image, (), 1)
    with pytest.raises(EngineError) as info:
        runner.start(image, plans["Embedder"], port=8080, name="c", engine=fake, timeout=5)
    assert "asks for accelerator L4:2" in info.value.message and "--cpu" in (info.value.hint or "")
    assert fake.containers == []
