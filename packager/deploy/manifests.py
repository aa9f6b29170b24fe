"""A truss or a chain -> its Deployment: the rendered workloads (one file each) and the notes a
cluster operator needs (Knative feature flags, the HPA's metric, a non-root cache owner)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import DeployError
from .pod import GPU_RESOURCE, secret_name
from .scaling import IN_FLIGHT_METRIC
from .settings import DeploySettings
from .targets import DeployTarget, RenderedWorkload, chain_config_map, service_url, workload_resources
from .workload import Workload

KNATIVE_DEFAULT_MAX_TIMEOUT = 600  # Knative's max-revision-timeout-seconds out of the box


@dataclass(frozen=True)
class Deployment:
    target: DeployTarget
    workloads: tuple[RenderedWorkload, ...]
    notes: tuple[str, ...]

    def manifests(self) -> list[dict[str, Any]]:
        """Every resource, in apply order."""
        return [r for w in self.workloads for r in w.resources]


def _knative_flags(workload: Workload, settings: DeploySettings) -> list[str]:
    """Knative's config-features flags the pod spec needs (off by default)."""
    flags = []
    if workload.volume_mode:
        flags += (["kubernetes.podspec-volumes-hostpath"] if settings.weights_cache.kind == "hostPath" else
                  ["kubernetes.podspec-persistent-volume-claim", "kubernetes.podspec-persistent-volume-write"])
    if settings.node_selector:
        flags.append("kubernetes.podspec-nodeselector")
    if settings.tolerations:
        flags.append("kubernetes.podspec-tolerations")
    return flags


def notes(workloads: Sequence[Workload], settings: Sequence[DeploySettings], target: DeployTarget) -> list[str]:
    found: list[str] = []
    knative = target is DeployTarget.KNATIVE or (target is DeployTarget.KSERVE
                                                  and all(s.kserve_mode == "Serverless" for s in settings))
    flags = sorted({f for w, s in zip(workloads, settings, strict=True) for f in _knative_flags(w, s)})
    if knative and flags:
        found.append("Knative config-features must enable: " + ", ".join(f"{f}: enabled" for f in flags))
    longest = max(s.drain_seconds for s in settings)
    if knative and longest > KNATIVE_DEFAULT_MAX_TIMEOUT:
        found.append(f"the drain ({longest} s, timeoutSeconds) is past Knative's default "
                     f"max-revision-timeout-seconds ({KNATIVE_DEFAULT_MAX_TIMEOUT}): raise it in config-defaults, "
                     "or set drain_seconds in deploy.yaml")
    if knative and any(s.warm_pool.initial_replicas == 0 for s in settings):
        found.append("initial_replicas 0 needs Knative's config-autoscaler allow-zero-initial-scale: true")
    if target is DeployTarget.K8S and any(s.warm_pool.max_replicas is not None for s in settings):
        found.append(f"the HorizontalPodAutoscaler scales on the Pods metric {IN_FLIGHT_METRIC} (the server's "
                     "/metrics): the cluster needs a custom-metrics adapter serving it (e.g. prometheus-adapter)")
    for w, s in zip(workloads, settings, strict=True):
        if w.volume_mode and s.weights_cache.kind == "hostPath" and w.plan.runtime_user is not None:
            found.append(f"{w.name} runs as user {w.plan.runtime_user}: {s.weights_cache.path} on every node must "
                         "be writable by it (hostPath creates it as root)")
        if w.plan.accelerator is not None and not s.node_selector and not s.tolerations:
            found.append(f"{w.name} asks for {w.plan.accelerator.count} {GPU_RESOURCE} ({w.plan.accelerator}): add "
                         "node_selector / tolerations in deploy.yaml if GPU nodes are labelled or tainted")
        if w.secret_names:
            found.append(f"{w.name} mounts Secret {secret_name(w, s)} (keys: {', '.join(w.secret_names)}) at "
                         "/secrets; create it before applying (kubectl create secret generic ...)")
    return found


def truss_deployment(workload: Workload, settings: DeploySettings, target: DeployTarget) -> Deployment:
    return Deployment(target, (workload_resources(workload, settings, target),),
                      tuple(notes([workload], [settings], target)))


def chain_deployment(chain: str, workloads: Sequence[Workload], settings: Sequence[DeploySettings],
                     target: DeployTarget, config_key: str,
                     dynamic_config: Callable[[dict[str, str]], dict[str, Any]]) -> Deployment:
    """Every chainlet's workload (dependencies first, entrypoint last) and, first of all, the
    ConfigMap that tells each chainlet where the others answer: `dynamic_config` turns the
    chainlets' Service URLs (class name -> http://<Service DNS name>) into the chain's document."""
    roles = [w.chain for w in workloads]
    if not workloads or any(r is None for r in roles):
        raise DeployError("a chain deployment needs one chainlet workload per chainlet")
    config_maps = {r.config_map for r in roles if r is not None}
    if len(config_maps) != 1 or len({s.namespace for s in settings}) != 1:
        raise DeployError("the chainlets of one chain share one ConfigMap and one namespace",
                          hint="set namespace once, at the top of the chain's deploy.yaml")
    bases = {w.chain.chainlet: service_url(w, s, target)
             for w, s in zip(workloads, settings, strict=True) if w.chain is not None}
    config_map = chain_config_map(config_maps.pop(), chain, dynamic_config(bases), settings[0], config_key)
    rendered = [RenderedWorkload(config_map["metadata"]["name"], (config_map,))]
    rendered += [workload_resources(w, s, target) for w, s in zip(workloads, settings, strict=True)]
    return Deployment(target, tuple(rendered), tuple(notes(workloads, settings, target)))


__all__ = ["Deployment", "chain_deployment", "notes", "truss_deployment"]
