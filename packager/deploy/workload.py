"""One workload to deploy: the truss's BuildPlan (what is in the image) plus the run-time facts of
its config (resources, secrets, health checks, concurrency), the image reference and its name.

The plan decides the image; these facts shape only the pod, so they are read here, once, from
the validated config, and the manifests are a pure function of Workload + DeploySettings.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..config import LoadedConfig
from ..constants import DEFAULT_SERVER_PORT
from ..plan.model import BuildPlan, WeightsMode

# KServe derives `<name>-predictor-<namespace>` host names and Knative `<name>-00001` revisions
# from the name: 45 characters leave them room under the 63 of a DNS label.
MAX_NAME = 45


@dataclass(frozen=True)
class HealthChecks:
    """config.yaml's runtime.health_checks (Truss's names), seconds; None: the deploy default."""

    restart_check_delay_seconds: int | None = None
    restart_threshold_seconds: int | None = None
    stop_traffic_threshold_seconds: int | None = None
    startup_threshold_seconds: int | None = None


@dataclass(frozen=True)
class ChainRole:
    """A chainlet's place in its chain: the ConfigMap carrying the dependency URLs, and whether
    it is the entrypoint (exposed) or only called by other chainlets (cluster-local)."""

    chain: str
    chainlet: str  # class name
    display_name: str
    config_map: str
    entrypoint: bool


@dataclass(frozen=True)
class Workload:
    plan: BuildPlan
    image: str
    name: str  # DNS label: the Deployment / Knative Service / InferenceService name
    cpu: str
    memory: str
    secret_names: tuple[str, ...]
    predict_concurrency: int
    health: HealthChecks = HealthChecks()
    chain: ChainRole | None = None

    @property
    def port(self) -> int:
        """Where Truss's routes answer: pack's server, or its proxy in front of a docker_server."""
        return self.plan.docker_server.proxy_port if self.plan.docker_server else DEFAULT_SERVER_PORT

    @property
    def fetched_bytes(self) -> int:
        """What a replica downloads at start: the prefetch manifest (volume mode), else nothing."""
        manifest = self.plan.prefetch_manifest
        return manifest.total_bytes if self.plan.weights_mode is WeightsMode.VOLUME and manifest else 0

    @property
    def volume_mode(self) -> bool:
        return self.plan.weights_mode is WeightsMode.VOLUME and self.plan.prefetch_manifest is not None


def dns_name(text: str) -> str:
    """`text` as a DNS label of at most MAX_NAME characters starting with a letter; a shortened
    name keeps a hash of the whole so two long names stay apart."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name) or "model"
    if not name[0].isalpha():
        name = "m-" + name
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        name = name[: MAX_NAME - 9].rstrip("-") + "-" + digest
    return name


def workload_from(loaded: LoadedConfig, plan: BuildPlan, image: str, name: str | None = None,
                  chain: ChainRole | None = None) -> Workload:
    """The workload of a planned truss; `name` (deploy.yaml) or the model's name."""
    config = loaded.config
    health = config.runtime.health_checks
    return Workload(
        plan=plan, image=image, name=name or dns_name(plan.model_name),
        cpu=config.resources.cpu, memory=config.resources.memory,
        secret_names=tuple(sorted(config.secrets)),
        predict_concurrency=config.runtime.predict_concurrency,
        health=HealthChecks(health.restart_check_delay_seconds, health.restart_threshold_seconds,
                            health.stop_traffic_threshold_seconds, health.startup_threshold_seconds),
        chain=chain,
    )


__all__ = ["MAX_NAME", "ChainRole", "HealthChecks", "Workload", "dns_name", "workload_from"]
