"""The pod of a workload, as every target runs it: the container (image, port, resources, probes
bound to the runtime's routes, the drain), its volumes (node weights cache in volume mode, the
secrets at /secrets, a chain's dynamic config) and its scheduling (GPU node selector,
tolerations, image pull secrets). Targets wrap it (targets.py) and set what differs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..constants import (
    DYNAMIC_CONFIG_DIR,
    LIVENESS_PATH,
    PACK_SHUTDOWN_TIMEOUT,
    READINESS_PATH,
    SECRETS_DIR,
)
from ..errors import DeployError
from ..render.context import RUNTIME_CACHE_DIR
from .settings import DeploySettings
from .workload import Workload

GPU_RESOURCE = "nvidia.com/gpu"  # the NVIDIA device plugin's extended resource
CACHE_VOLUME = "weights-cache"
SECRETS_VOLUME = "secrets"
CHAIN_CONFIG_VOLUME = "chain-config"
# After the drain the server closes its WebSocket sessions and exits; the kubelet's SIGKILL must
# not cut that short.
EXIT_ALLOWANCE_SECONDS = 30
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
MB = 10**6


@dataclass(frozen=True)
class PodShape:
    """What a target lets the pod carry."""

    port_name: str  # Knative accepts only http1 / h2c
    grace_period: bool  # terminationGracePeriodSeconds (Knative derives it from its request timeout)
    container_name: str = "model"  # KServe: kserve-container


def startup_budget_seconds(workload: Workload, settings: DeploySettings) -> int:
    """How long a replica may take to become ready: its start-time download at the expected
    bandwidth plus the load allowance, or config.yaml's startup_threshold_seconds when set."""
    if workload.health.startup_threshold_seconds is not None:
        return workload.health.startup_threshold_seconds
    download = workload.fetched_bytes / (settings.probes.bandwidth_mb_per_s * MB)
    return math.ceil(download) + settings.probes.load_seconds


def _threshold(seconds: int | None, period: int) -> int | None:
    return None if seconds is None else max(1, math.ceil(seconds / period))


def probes(workload: Workload, settings: DeploySettings) -> dict[str, dict[str, Any]]:
    """startupProbe on the readiness route (503 until the model is loaded) for the whole
    budget; then readiness on it and liveness on the health route (200 while loading too)."""
    period = settings.probes.period_seconds
    port = workload.port

    def probe(path: str, **extra: int | None) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": port}, "periodSeconds": period,
                **{k: v for k, v in extra.items() if v is not None}}

    health = workload.health
    return {
        "startupProbe": probe(READINESS_PATH, failureThreshold=_threshold(startup_budget_seconds(workload, settings),
                                                                           period)),
        "readinessProbe": probe(READINESS_PATH, failureThreshold=_threshold(health.stop_traffic_threshold_seconds,
                                                                             period)),
        "livenessProbe": probe(LIVENESS_PATH, initialDelaySeconds=health.restart_check_delay_seconds,
                               failureThreshold=_threshold(health.restart_threshold_seconds, period)),
    }


def resources(workload: Workload) -> dict[str, Any]:
    """config.yaml's cpu and memory as requests (memory also the limit: a model over it is
    killed rather than the node), the accelerator's count as nvidia.com/gpu."""
    limits: dict[str, Any] = {"memory": workload.memory}
    accelerator = workload.plan.accelerator
    if accelerator is not None:
        limits[GPU_RESOURCE] = str(accelerator.count)  # a quantity, written as one
    return {"requests": {"cpu": workload.cpu, "memory": workload.memory}, "limits": limits}


def secret_name(workload: Workload, settings: DeploySettings) -> str:
    return settings.secret_name or f"{workload.name}-secrets"


def _secret_items(workload: Workload) -> list[dict[str, str]]:
    for name in workload.secret_names:
        if not _SECRET_KEY.fullmatch(name):
            raise DeployError(f"secret `{name}` (config.yaml secrets) cannot be a key of a Kubernetes Secret",
                              hint="Secret keys are letters, digits, `-`, `_` and `.`: rename the secret")
    return [{"key": name, "path": name} for name in workload.secret_names]


def volumes(workload: Workload, settings: DeploySettings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, the container's volumeMounts). Volume mode: the node cache where the runtime's
    content-addressed cache lives (PACK_CACHE_DIR); bake mode and no weights: nothing."""
    vols: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if workload.volume_mode:
        cache = settings.weights_cache
        source: dict[str, Any] = (
            {"hostPath": {"path": cache.path, "type": "DirectoryOrCreate"}} if cache.kind == "hostPath"
            else {"persistentVolumeClaim": {"claimName": cache.claim}})
        vols.append({"name": CACHE_VOLUME, **source})
        mounts.append({"name": CACHE_VOLUME, "mountPath": RUNTIME_CACHE_DIR})
    if workload.secret_names:
        # Values stay in the Secret: the manifest names the Secret and its keys, nothing more.
        # optional: false (Kubernetes' default, written out: podman 4.3's kube play needs it said)
        # keeps a pod whose Secret is missing from starting without its credentials.
        vols.append({"name": SECRETS_VOLUME, "secret": {"secretName": secret_name(workload, settings),
                                                         "items": _secret_items(workload), "optional": False}})
        mounts.append({"name": SECRETS_VOLUME, "mountPath": SECRETS_DIR, "readOnly": True})
    if workload.chain is not None:
        vols.append({"name": CHAIN_CONFIG_VOLUME, "configMap": {"name": workload.chain.config_map}})
        mounts.append({"name": CHAIN_CONFIG_VOLUME, "mountPath": DYNAMIC_CONFIG_DIR, "readOnly": True})
    return vols, mounts


def container(workload: Workload, settings: DeploySettings, shape: PodShape) -> dict[str, Any]:
    _, mounts = volumes(workload, settings)
    spec: dict[str, Any] = {
        "name": shape.container_name,
        "image": workload.image,
        "ports": [{"name": shape.port_name, "containerPort": workload.port, "protocol": "TCP"}],
        # The runtime drains for this long at SIGTERM; the pod's grace period covers it.
        "env": [{"name": PACK_SHUTDOWN_TIMEOUT, "value": str(settings.drain_seconds)}],
        "resources": resources(workload),
        **probes(workload, settings),
    }
    if mounts:
        spec["volumeMounts"] = mounts
    return spec


def scheduling(settings: DeploySettings) -> dict[str, Any]:
    """Pod fields that place it: node selector, tolerations, image pull secrets."""
    spec: dict[str, Any] = {}
    if settings.node_selector:
        spec["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        spec["tolerations"] = [dict(t) for t in settings.tolerations]
    if settings.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in settings.image_pull_secrets]
    return spec


def pod_spec(workload: Workload, settings: DeploySettings, shape: PodShape) -> dict[str, Any]:
    vols, _ = volumes(workload, settings)
    spec: dict[str, Any] = {"containers": [container(workload, settings, shape)], **scheduling(settings)}
    if vols:
        spec["volumes"] = vols
    if shape.grace_period:
        spec["terminationGracePeriodSeconds"] = settings.drain_seconds + EXIT_ALLOWANCE_SECONDS
    return spec


__all__ = ["EXIT_ALLOWANCE_SECONDS", "GPU_RESOURCE", "PodShape", "pod_spec", "probes", "scheduling",
           "secret_name", "startup_budget_seconds", "volumes"]
