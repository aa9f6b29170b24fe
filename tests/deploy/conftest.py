"""Trusses of every kind the deploy stage meets, planned offline: volume-mode and bake-mode weights
(pinned in a pack.lock as if resolved), a docker_server truss on port 8080 (so its routes move to
8081), and a two-chainlet chain whose weights come from the MockHub stand-in."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from packager import api
from tests.chains.conftest import isolated_registry  # noqa: F401 - autouse: chainlet names per test
from tests.deploy import schemas
from tests.render.conftest import make_truss, pin

IMAGE = "registry.example:5000/team/model:v1"
WEIGHTS = {"config.json": 1_000, "model.safetensors": 2_000_000_000}  # bytes fetched at start (volume mode)
TARGETS = ("k8s", "knative", "kserve")

WEIGHTS_CONFIG = """model_name: {name}
resources:
  cpu: "2"
  memory: 6Gi
  accelerator: A10G:2
secrets:
  hf_access_token: null
runtime:
  predict_concurrency: 4
model_cache:
  - repo_id: org/model
    revision: main
    use_volume: {volume}
    volume_folder: weights
"""

DOCKER_SERVER_CONFIG = """model_name: custom-server
base_image:
  image: python:3.11-slim
  python_executable_path: /usr/local/bin/python3
docker_server:
  start_command: python3 -m http.server 8080
  server_port: 8080
  predict_endpoint: /predict
  readiness_endpoint: /ready
  liveness_endpoint: /live
resources:
  cpu: 500m
  memory: 512Mi
"""

CHAIN = '''
import truss_chains as chains
from truss import truss_config


class Embedder(chains.ChainletBase):
    remote_config = chains.RemoteConfig(
        compute=chains.Compute(cpu_count=2, memory="3Gi", gpu="A10G"),
        assets=chains.Assets(
            cached=[truss_config.ModelRepo(repo_id="org/model", revision="main", use_volume=True,
                                           volume_folder="w")],
            secret_keys=["hf_access_token"]))

    async def run_remote(self, text: str) -> int:
        return len(text)


@chains.mark_entrypoint("deploy-chain")
class Front(chains.ChainletBase):
    def __init__(self, embedder: Embedder = chains.depends(Embedder)) -> None:
        self._embedder = embedder

    async def run_remote(self, text: str) -> int:
        return await self._embedder.run_remote(text)
'''


@pytest.fixture
def truss(tmp_path: Path) -> Callable[[str], Path]:
    """truss("volume" | "bake" | "docker_server" | "none") -> a truss directory, planned offline."""
    def make(kind: str) -> Path:
        root = tmp_path / kind
        if kind == "docker_server":
            return make_truss(root, DOCKER_SERVER_CONFIG)
        if kind == "none":
            return make_truss(root, "model_name: plain\n")
        make_truss(root, WEIGHTS_CONFIG.format(name=f"{kind}-model", volume="true" if kind == "volume" else "false"))
        pin(root, WEIGHTS)
        return root
    return make


@pytest.fixture
def chain_file(tmp_path: Path, hub_env: Any) -> Iterator[Path]:
    """A chain: Front (entrypoint) -> Embedder (GPU, a secret, weights on a volume from the hub).
    Its module name is its own (a chain module stays imported) and is unloaded after."""
    hub_env.add_repo("org/model").commit({"config.json": "{}", "w.safetensors": b"\x01" * 4096})
    stem = f"deploy_chain_{uuid.uuid4().hex[:8]}"
    path = tmp_path / "chain" / f"{stem}.py"
    path.parent.mkdir()
    path.write_text(CHAIN)
    yield path
    sys.modules.pop(stem, None)


def validated(deployment: api.Deployment) -> list[dict[str, Any]]:
    """Every resource, each checked against its schema (a resource without one fails)."""
    resources = deployment.manifests()
    for resource in resources:
        schemas.validate(resource)
    return resources


def by_kind(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] == kind]


def pod_of(resource: dict[str, Any]) -> dict[str, Any]:
    """The pod spec inside a Deployment, DaemonSet, Knative Service or InferenceService."""
    if resource["kind"] == "InferenceService":
        return dict(resource["spec"]["predictor"])
    return dict(resource["spec"]["template"]["spec"])
