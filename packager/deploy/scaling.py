"""The warm-pool knobs mapped to each target's own fields; a knob a target has no field for is
an UnsupportedKnobError naming the knob and the target, never dropped.

    knob                k8s (Deployment + HPA)          knative (annotations)        kserve (predictor)
    min_replicas        HPA minReplicas (>= 1)          min-scale                    minReplicas
    max_replicas        HPA maxReplicas                 max-scale                    maxReplicas
    initial_replicas    Deployment replicas             initial-scale                Serverless: initial-scale
    scaledown_window    HPA scaleDown stabilization     scale-down-delay             Serverless: scale-down-delay
    concurrency_target  HPA Pods metric (in flight)     target (concurrency)         scaleTarget, scaleMetric
    buffer_replicas     -                               activation-scale (from 0)    Serverless: activation-scale

Without concurrency_target the autoscalers aim at config.yaml's runtime.predict_concurrency: the
requests one replica serves at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..errors import UnsupportedKnobError
from .settings import DeploySettings, WarmPool
from .workload import Workload

KNATIVE_AUTOSCALING = "autoscaling.knative.dev/"
# The runtime's gauge of requests being served (packager/runtime/serving/metrics.py), which a
# Prometheus adapter offers the HPA as a Pods metric.
IN_FLIGHT_METRIC = "pack_requests_in_flight"
# Knative's scale-down-delay and the HPA's stabilization window both stop at one hour.
MAX_SCALEDOWN_WINDOW = 3600


@dataclass(frozen=True)
class HpaScaling:
    replicas: int  # the Deployment's replicas (initial count; fixed without an HPA)
    hpa: dict[str, Any] | None  # the HorizontalPodAutoscaler's spec, less scaleTargetRef


def _refuse(knob: str, target: str, why: str, hint: str) -> UnsupportedKnobError:
    return UnsupportedKnobError(knob, target, f"{knob} cannot be expressed on target {target}: {why}", hint)


def _window(pool: WarmPool, target: str) -> int | None:
    window = pool.scaledown_window
    if window is not None and window > MAX_SCALEDOWN_WINDOW:
        raise _refuse("scaledown_window", target, f"{window} s is past its limit of {MAX_SCALEDOWN_WINDOW} s",
                      f"use at most {MAX_SCALEDOWN_WINDOW}, or keep replicas with min_replicas")
    return window


def _concurrency(pool: WarmPool, workload: Workload) -> int:
    return pool.concurrency_target or workload.predict_concurrency


def k8s_scaling(workload: Workload, settings: DeploySettings) -> HpaScaling:
    """A Deployment, and a HorizontalPodAutoscaler when max_replicas asks for autoscaling."""
    pool, target = settings.warm_pool, "k8s"
    if pool.buffer_replicas is not None:
        raise _refuse("buffer_replicas", target, "a HorizontalPodAutoscaler scales on a per-replica metric and "
                      "has no field for idle replicas kept above the load",
                      "raise min_replicas for a standing pool, lower concurrency_target for headroom, or use "
                      "--target knative/kserve (buffer = replicas started at once when waking from zero)")
    if pool.min_replicas == 0:
        raise _refuse("min_replicas", target, "a HorizontalPodAutoscaler's minReplicas is at least 1 (scaling "
                      "to zero needs Knative, KServe Serverless or KEDA)",
                      "use min_replicas 1 or more, or --target knative/kserve")
    if pool.max_replicas is None:
        for knob in ("scaledown_window", "concurrency_target", "initial_replicas"):
            if getattr(pool, knob) is not None:
                raise _refuse(knob, target, "it configures the HorizontalPodAutoscaler, which is made only "
                              "when max_replicas is set (without it the replica count is fixed)",
                              "add max_replicas, or drop the knob")
        return HpaScaling(pool.min_replicas or 1, None)
    low = pool.min_replicas or 1
    spec: dict[str, Any] = {
        "minReplicas": low,
        "maxReplicas": pool.max_replicas,
        "metrics": [{"type": "Pods", "pods": {
            "metric": {"name": IN_FLIGHT_METRIC},
            "target": {"type": "AverageValue", "averageValue": str(_concurrency(pool, workload))}}}],
    }
    window = _window(pool, target)
    if window is not None:
        spec["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": window}}
    return HpaScaling(max(low, pool.initial_replicas or low), spec)


def _buffer(pool: WarmPool, target: str) -> int | None:
    """buffer_replicas as Knative's activation-scale: 1 + buffer replicas start together when the
    service wakes from zero. With a floor above zero it never wakes, so it would do nothing."""
    if pool.buffer_replicas is None:
        return None
    if pool.min_replicas:
        raise _refuse("buffer_replicas", target, "its only field is activation-scale (replicas started at once "
                      f"when scaling up from zero), and min_replicas {pool.min_replicas} never lets it reach zero",
                      "drop buffer_replicas and size min_replicas, or set min_replicas 0")
    return 1 + pool.buffer_replicas


def knative_annotations(workload: Workload, settings: DeploySettings, target: str = "knative") -> dict[str, str]:
    """The revision template's autoscaling annotations (KServe Serverless passes them on)."""
    pool = settings.warm_pool
    values: dict[str, str | None] = {
        "min-scale": _str(pool.min_replicas),
        "max-scale": _str(pool.max_replicas),
        "initial-scale": _str(pool.initial_replicas),
        "scale-down-delay": None if (w := _window(pool, target)) is None else f"{w}s",
        "activation-scale": _str(_buffer(pool, target)),
    }
    if target == "knative":
        values["metric"] = "concurrency"
        values["target"] = str(_concurrency(pool, workload))
    return {KNATIVE_AUTOSCALING + k: v for k, v in sorted(values.items()) if v is not None}


def _str(value: int | None) -> str | None:
    return None if value is None else str(value)


def kserve_scaling(workload: Workload, settings: DeploySettings) -> tuple[dict[str, Any], dict[str, str]]:
    """(predictor fields, predictor annotations). RawDeployment runs an HPA on cpu or memory:
    the Knative-only knobs and a concurrency target are refused there."""
    pool, mode = settings.warm_pool, settings.kserve_mode
    target = f"kserve ({mode})"
    fields: dict[str, Any] = {}
    if pool.min_replicas is not None:
        fields["minReplicas"] = pool.min_replicas
    if pool.max_replicas is not None:
        fields["maxReplicas"] = pool.max_replicas
    if mode == "RawDeployment":
        raw_only = {
            "initial_replicas": "the predictor's Deployment starts at minReplicas; initial-scale is Knative's",
            "scaledown_window": "the predictor's HPA gets no behavior from the InferenceService",
            "buffer_replicas": "activation-scale is Knative's; RawDeployment has no scale-from-zero",
            "concurrency_target": "RawDeployment scales on cpu or memory (scaleMetric), not requests in flight",
        }
        for knob, why in raw_only.items():
            if getattr(pool, knob) is not None:
                raise _refuse(knob, target, why, "use kserve.deployment_mode: Serverless, or drop the knob")
        if pool.min_replicas == 0:
            raise _refuse("min_replicas", target, "a RawDeployment predictor cannot scale to zero",
                          "use min_replicas 1 or more, or kserve.deployment_mode: Serverless")
        return fields, {}
    fields["scaleMetric"] = "concurrency"
    fields["scaleTarget"] = _concurrency(pool, workload)
    pool_for_annotations = WarmPool(initial_replicas=pool.initial_replicas, scaledown_window=pool.scaledown_window,
                                    buffer_replicas=pool.buffer_replicas, min_replicas=pool.min_replicas)
    annotations = knative_annotations(workload, replace(settings, warm_pool=pool_for_annotations), target)
    # minReplicas carries the floor; the annotation would say it twice.
    annotations.pop(KNATIVE_AUTOSCALING + "min-scale", None)
    return fields, annotations


__all__ = ["IN_FLIGHT_METRIC", "KNATIVE_AUTOSCALING", "MAX_SCALEDOWN_WINDOW", "HpaScaling", "k8s_scaling",
           "knative_annotations", "kserve_scaling"]
