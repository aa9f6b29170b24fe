"""The sample trusses build with a real engine, run, and answer; the weights inside the running
container are byte-identical to the files the stand-in hub serves.

minilm-volume: the image carries no weights; the runtime prefetches them at start into
/app/model_cache/minilm/. minilm-bake: the build downloads them into the image, in the Hugging
Face cache layout (snapshots/<sha>/..., refs/main = <sha>).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from packager import runner
from packager.builder import BuildResult
from packager.runner import Running
from tests.e2e.conftest import (
    BASE_IMAGE,
    HF_HUB_CACHE,
    MINILM_REPO,
    Hub,
    Resources,
    build,
    exec_in,
    free_port,
    sha256_in_container,
    start,
)

pytestmark = pytest.mark.docker

TEXTS = ["This is an example sentence.", "A man is eating food."]
# First dimensions of the transformers reference embeddings (tests/samples/test_minilm_numpy.py).
REFERENCE = {
    "This is an example sentence.": [0.0981, 0.0678, 0.0625, 0.0951, 0.0366],
    "A man is eating food.": [0.0332, 0.0044, -0.0063, 0.0484, -0.1387],
}


@dataclass
class Served:
    sample: str
    result: BuildResult
    running: Running
    weights_bytes_at_start: int  # file bytes the hub served while the container started


@pytest.fixture(scope="module", params=["minilm-volume", "minilm-bake"])
def minilm(request: pytest.FixtureRequest, samples: Path, hub: Hub, resources: Resources) -> Iterator[Served]:
    name = request.param
    result = build(samples / name, resources.tag(name))
    hub.hub.reset_stats()
    running = start(result, result.plan, resources)
    served = Served(name, result, running, hub.hub.file_bytes())
    try:
        yield served
    finally:
        running.container.remove()  # free the CPU for the next sample (2-core CI)


def test_minilm_answers_with_unit_embeddings(minilm: Served) -> None:
    answer = runner.predict(minilm.running.url, {"texts": TEXTS}, timeout=120)
    assert isinstance(answer, dict), answer
    assert answer["dim"] == 384 and answer["model"] == "all-MiniLM-L6-v2"
    embeddings = answer["embeddings"]
    assert len(embeddings) == len(TEXTS)
    for text, vector in zip(TEXTS, embeddings, strict=True):
        assert len(vector) == 384
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-4)
        # The real model's numbers, not just the right shape.
        assert vector[:5] == pytest.approx(REFERENCE[text], abs=1e-3)


def test_minilm_weights_in_container_are_byte_identical(minilm: Served, hub: Hub, docker_client: Any) -> None:
    expected = hub.minilm_files  # repo path -> sha256 of the source file, hashed on this host
    if minilm.sample == "minilm-volume":
        root = "/app/model_cache/minilm"
    else:
        root = f"{HF_HUB_CACHE}/models--{MINILM_REPO.replace('/', '--')}/snapshots/{hub.minilm_sha}"
    paths = {f"{root}/{rel}": digest for rel, digest in expected.items()}

    # pack placed exactly these files (the allow_patterns selection), nothing more or less ...
    assert {e.destination for e in minilm.result.plan.manifest.entries} == set(paths)
    # ... and what the running container reads is bit for bit the source.
    in_container = sha256_in_container(docker_client, minilm.running.container.name, sorted(paths))
    assert in_container == paths

    total = sum(e.size for e in minilm.result.plan.manifest.entries)
    if minilm.sample == "minilm-bake":
        ref = exec_in(docker_client, minilm.running.container.name,
                      ["cat", f"{HF_HUB_CACHE}/models--{MINILM_REPO.replace('/', '--')}/refs/main"])
        assert ref == hub.minilm_sha
        assert minilm.weights_bytes_at_start == 0  # baked: nothing fetched when it starts
    else:
        # A fresh cache volume: the weights came from the hub while the container started.
        assert minilm.weights_bytes_at_start >= total


@pytest.fixture(scope="module")
def echo(samples: Path, hub: Hub, resources: Resources) -> Iterator[tuple[BuildResult, Running]]:
    result = build(samples / "echo", resources.tag("echo"))
    running = start(result, result.plan, resources)
    try:
        yield result, running
    finally:
        running.container.remove()


def test_echo_builds_and_answers(echo: tuple[BuildResult, Running], samples: Path) -> None:
    result, running = echo
    assert result.plan.weights_mode == "none"
    answer = runner.predict(running.url, {"text": "hello"}, timeout=60)
    motto = (samples / "echo" / "data" / "motto.txt").read_text().strip()
    assert answer == {"echo": {"text": "hello"}, "greeting": "hello", "motto": motto}


@pytest.fixture(scope="module")
def docker_server(samples: Path, hub: Hub, resources: Resources) -> Iterator[tuple[BuildResult, Running]]:
    truss = samples / "docker-server"
    # The sample's server listens on 8000; on the shared host network that port may be taken
    # (another run of this very sample), so this copy uses a free one.
    port = free_port()
    config = truss / "config.yaml"
    text = config.read_text()
    text = re.sub(r"--port 8000\b", f"--port {port}", text)
    text = re.sub(r"server_port: 8000\b", f"server_port: {port}", text)
    config.write_text(text)
    result = build(truss, resources.tag("docker-server"))
    running = start(result, result.plan, resources)
    try:
        yield result, running
    finally:
        running.container.remove()


def test_docker_server_builds_on_the_override_base_and_answers(docker_server: tuple[BuildResult, Running]) -> None:
    result, running = docker_server
    # config.yaml names python:3.11-slim with /usr/local/bin/python3; --base-image replaces the
    # image, and the configured interpreter path goes with it (pack-base has python3 on PATH).
    assert result.plan.base.image == BASE_IMAGE
    assert result.plan.base.python == "python3"
    answer = runner.predict(running.url, {"x": 1, "text": "hi"}, timeout=60)
    assert answer == {"server": "docker-server-echo", "input": {"x": 1, "text": "hi"}}
