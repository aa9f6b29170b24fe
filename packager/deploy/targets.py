"""Workloads -> Kubernetes resources, per target, as plain dicts in a fixed order.

    k8s      Deployment + Service (+ HorizontalPodAutoscaler with max_replicas)
    knative  serving.knative.dev/v1 Service (autoscaling annotations on the revision template)
    kserve   serving.kserve.io/v1beta1 InferenceService (a custom predictor container)

and, for every target: the pre-warm DaemonSet of a volume-mode truss (weights_cache.prewarm), and
a chain's ConfigMap with the dependency URLs (Service DNS names). Pure: equal inputs give equal
lists, so the YAML written from them is byte-identical.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..constants import SECRETS_DIR
from ..errors import DeployError
from ..render.context import RUNTIME_CACHE_DIR
from ..runtime import modules
from ..runtime.manifest import IMAGE_MANIFEST_PATH
from .pod import CACHE_VOLUME, SECRETS_VOLUME, PodShape, pod_spec, scheduling, volumes
from .scaling import k8s_scaling, knative_annotations, kserve_scaling
from .settings import DeploySettings
from .workload import Workload

Manifest = dict[str, Any]
MANAGED_BY = {"app.kubernetes.io/managed-by": "pack"}
SERVICE_PORT = 80
KNATIVE_VISIBILITY = "networking.knative.dev/visibility"
KSERVE_VISIBILITY = "networking.kserve.io/visibility"
KSERVE_MODE = "serving.kserve.io/deploymentMode"
KSERVE_CONTAINER = "kserve-container"  # the name KServe requires of a custom predictor's container


class DeployTarget(str, Enum):
    K8S = "k8s"
    KNATIVE = "knative"
    KSERVE = "kserve"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class RenderedWorkload:
    """The resources of one workload (one file), in apply order."""

    name: str
    resources: tuple[Manifest, ...]


def _labels(workload: Workload) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": workload.name, **MANAGED_BY}
    if workload.chain is not None:
        labels["app.kubernetes.io/part-of"] = workload.chain.chain
    return labels


def _metadata(name: str, settings: DeploySettings, labels: dict[str, str],
              annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": settings.namespace, "labels": labels}
    if annotations:
        meta["annotations"] = annotations
    return meta


def _exposed(workload: Workload) -> bool:
    """A truss, or a chain's entrypoint: reachable from outside; other chainlets cluster-local."""
    return workload.chain is None or workload.chain.entrypoint


def service_url(workload: Workload, settings: DeploySettings, target: DeployTarget) -> str:
    """Where other pods reach the workload: its Service's cluster DNS name (KServe names the
    predictor's Service `<name>-predictor`), on the Service's port."""
    host = workload.name + ("-predictor" if target is DeployTarget.KSERVE else "")
    return f"http://{host}.{settings.namespace}.svc.cluster.local"


# --- k8s ------------------------------------------------------------------------------------------
def _k8s(workload: Workload, settings: DeploySettings) -> list[Manifest]:
    labels = _labels(workload)
    selector = {"app.kubernetes.io/name": workload.name}
    scaling = k8s_scaling(workload, settings)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _metadata(workload.name, settings, labels),
        "spec": {
            "replicas": scaling.replicas,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels},
                         "spec": pod_spec(workload, settings, PodShape("http", grace_period=True))},
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _metadata(workload.name, settings, labels),
        "spec": {"type": settings.service_type if _exposed(workload) else "ClusterIP", "selector": selector,
                 "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}]},
    }
    resources: list[Manifest] = [deployment, service]
    if scaling.hpa is not None:
        resources.append({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": _metadata(workload.name, settings, labels),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload.name},
                     **scaling.hpa},
        })
    return resources


# --- knative --------------------------------------------------------------------------------------
def _knative(workload: Workload, settings: DeploySettings) -> list[Manifest]:
    labels = _labels(workload)
    if not _exposed(workload):
        labels[KNATIVE_VISIBILITY] = "cluster-local"
    spec = pod_spec(workload, settings, PodShape("http1", grace_period=False))
    # Knative gives a terminating pod its request timeout as grace period: the drain.
    spec["timeoutSeconds"] = settings.drain_seconds
    return [{
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": _metadata(workload.name, settings, labels),
        "spec": {"template": {
            "metadata": {"labels": _labels(workload), "annotations": knative_annotations(workload, settings)},
            "spec": spec,
        }},
    }]


# --- kserve ---------------------------------------------------------------------------------------
def _kserve(workload: Workload, settings: DeploySettings) -> list[Manifest]:
    labels = _labels(workload)
    if not _exposed(workload):
        labels[KSERVE_VISIBILITY] = "cluster-local"
    serverless = settings.kserve_mode == "Serverless"
    fields, annotations = kserve_scaling(workload, settings)
    spec = pod_spec(workload, settings, PodShape("http1", grace_period=not serverless,
                                                 container_name=KSERVE_CONTAINER))
    predictor: dict[str, Any] = {**fields, **spec}
    if serverless:
        predictor["timeout"] = settings.drain_seconds  # Knative's request timeout: the pod's grace period
    if annotations:
        predictor["annotations"] = annotations
    return [{
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": _metadata(workload.name, settings, labels, {KSERVE_MODE: settings.kserve_mode}),
        "spec": {"predictor": predictor},
    }]


# --- shared ---------------------------------------------------------------------------------------
def prewarm_daemonset(workload: Workload, settings: DeploySettings) -> Manifest:
    """On every node the model may land on: the image's own downloader fetches the manifest into
    the node cache (a scratch tree of hard links beside it, removed after), then the pod idles,
    so its readiness says the node is warm."""
    name = f"{workload.name}-prewarm"
    labels = {"app.kubernetes.io/name": name, **MANAGED_BY}
    python = workload.plan.base.python
    scratch = f"{RUNTIME_CACHE_DIR}/.prewarm-{workload.name}"
    vols, _ = volumes(workload, settings)
    mounts: list[dict[str, Any]] = [{"name": CACHE_VOLUME, "mountPath": RUNTIME_CACHE_DIR}]
    if any(v["name"] == SECRETS_VOLUME for v in vols):
        mounts.append({"name": SECRETS_VOLUME, "mountPath": SECRETS_DIR, "readOnly": True})
    small = {"requests": {"cpu": "100m", "memory": "64Mi"}}
    fetch = {"name": "prefetch", "image": workload.image,
             "command": [python, "-m", modules.TRANSFER, IMAGE_MANIFEST_PATH, "--dest", scratch,
                         "--cache", RUNTIME_CACHE_DIR],
             "volumeMounts": mounts}
    tidy = {"name": "tidy", "image": workload.image,
            "command": [python, "-c", f"import shutil; shutil.rmtree({scratch!r}, ignore_errors=True)"],
            "volumeMounts": mounts[:1], "resources": small}
    idle = {"name": "idle", "image": workload.image,
            "command": [python, "-c", "import signal, sys; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); "
                                      "signal.pause()"],
            "resources": small}
    pod: dict[str, Any] = {"initContainers": [fetch, tidy], "containers": [idle], **scheduling(settings),
                           "volumes": [v for v in vols if v["name"] in (CACHE_VOLUME, SECRETS_VOLUME)],
                           "terminationGracePeriodSeconds": 10}
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": _metadata(name, settings, labels),
        "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                 "template": {"metadata": {"labels": labels}, "spec": pod}},
    }


_BUILDERS = {DeployTarget.K8S: _k8s, DeployTarget.KNATIVE: _knative, DeployTarget.KSERVE: _kserve}


def workload_resources(workload: Workload, settings: DeploySettings, target: DeployTarget) -> RenderedWorkload:
    """One workload's resources on `target`: its pre-warm DaemonSet first, then what serves it."""
    resources: list[Manifest] = []
    if settings.weights_cache.prewarm:
        if not workload.volume_mode:
            raise DeployError(f"weights_cache.prewarm: {workload.plan.model_name} fetches no weights when it starts "
                              f"(weights mode {workload.plan.weights_mode}), so there is nothing to pre-warm",
                              hint="drop weights_cache.prewarm (baked weights come with the image)")
        resources.append(prewarm_daemonset(workload, settings))
    resources += _BUILDERS[target](workload, settings)
    return RenderedWorkload(workload.name, tuple(resources))


def chain_config_map(name: str, chain: str, config: dict[str, Any], settings: DeploySettings, key: str) -> Manifest:
    """What every chainlet reads at DYNAMIC_CONFIG_DIR/<key>: display name -> its URLs."""
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": _metadata(name, settings, {"app.kubernetes.io/part-of": chain, **MANAGED_BY}),
        "data": {key: json.dumps(config, indent=2, sort_keys=True) + "\n"},
    }


def render_workloads(workloads: Sequence[Workload], settings: Sequence[DeploySettings],
                     target: DeployTarget) -> list[RenderedWorkload]:
    return [workload_resources(w, s, target) for w, s in zip(workloads, settings, strict=True)]


__all__ = ["DeployTarget", "Manifest", "RenderedWorkload", "chain_config_map", "prewarm_daemonset",
           "render_workloads", "service_url", "workload_resources"]
