"""The warm-pool knobs on each target's native fields, and one error per knob a target cannot
express (naming the knob and the target), from deploy.yaml and from flags alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager import api
from packager.errors import DeployError, UnsupportedKnobError

from .conftest import IMAGE, by_kind, validated

ALL = {"min_replicas": 0, "max_replicas": 6, "buffer_replicas": 2, "scaledown_window": 900,
       "concurrency_target": 3, "initial_replicas": 2}


def render(truss, target: str, knobs: dict[str, int], deploy: str | None = None, tmp: Path | None = None):
    deploy_file = None
    if deploy is not None:
        assert tmp is not None
        deploy_file = tmp / "deploy.yaml"
        deploy_file.write_text(deploy)
    deployment, _ = api.deploy_manifests(truss("none"), target=target, image=IMAGE, knobs=knobs,
                                         deploy_file=deploy_file)
    return validated(deployment)


def test_k8s_deployment_and_hpa(truss):
    knobs = {k: v for k, v in ALL.items() if k != "buffer_replicas"} | {"min_replicas": 1}
    resources = render(truss, "k8s", knobs)
    deployment, hpa = by_kind(resources, "Deployment")[0], by_kind(resources, "HorizontalPodAutoscaler")[0]
    assert deployment["spec"]["replicas"] == 2  # initial_replicas
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 6
    assert hpa["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 900}}
    assert hpa["spec"]["metrics"] == [{"type": "Pods", "pods": {
        "metric": {"name": "pack_requests_in_flight"}, "target": {"type": "AverageValue", "averageValue": "3"}}}]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "plain"}


def test_k8s_without_max_replicas_is_a_fixed_count(truss):
    resources = render(truss, "k8s", {"min_replicas": 3})
    assert by_kind(resources, "Deployment")[0]["spec"]["replicas"] == 3
    assert by_kind(resources, "HorizontalPodAutoscaler") == []


def test_knative_annotations(truss):
    resources = render(truss, "knative", ALL)
    annotations = resources[0]["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "autoscaling.knative.dev/activation-scale": "3",  # 1 + buffer, on waking from zero
        "autoscaling.knative.dev/initial-scale": "2",
        "autoscaling.knative.dev/max-scale": "6",
        "autoscaling.knative.dev/metric": "concurrency",
        "autoscaling.knative.dev/min-scale": "0",
        "autoscaling.knative.dev/scale-down-delay": "900s",
        "autoscaling.knative.dev/target": "3",
    }


def test_knative_target_defaults_to_predict_concurrency(truss):
    resources = render(truss, "knative", {})
    annotations = resources[0]["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"autoscaling.knative.dev/metric": "concurrency", "autoscaling.knative.dev/target": "1"}


def test_kserve_serverless_fields_and_annotations(truss):
    resources = render(truss, "kserve", ALL)
    predictor = resources[0]["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 6)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 3)
    assert predictor["annotations"] == {
        "autoscaling.knative.dev/activation-scale": "3",
        "autoscaling.knative.dev/initial-scale": "2",
        "autoscaling.knative.dev/scale-down-delay": "900s",
    }
    assert resources[0]["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "Serverless"}


def test_kserve_raw_deployment(truss, tmp_path: Path):
    resources = render(truss, "kserve", {"min_replicas": 1, "max_replicas": 4},
                       "kserve: {deployment_mode: RawDeployment}\n", tmp_path)
    predictor = resources[0]["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 4)
    assert "scaleMetric" not in predictor and "annotations" not in predictor
    assert predictor["terminationGracePeriodSeconds"] > 3600  # a plain Deployment: the drain in the grace period
    assert resources[0]["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "RawDeployment"}


# --- what a target cannot express ------------------------------------------------------------------
UNSUPPORTED = [
    ("k8s", {"buffer_replicas": 1}, "buffer_replicas"),
    ("k8s", {"min_replicas": 0, "max_replicas": 3}, "min_replicas"),
    ("k8s", {"scaledown_window": 60}, "scaledown_window"),  # no HPA without max_replicas
    ("k8s", {"concurrency_target": 2}, "concurrency_target"),
    ("k8s", {"initial_replicas": 2}, "initial_replicas"),
    ("k8s", {"max_replicas": 3, "scaledown_window": 7200}, "scaledown_window"),
    ("knative", {"scaledown_window": 3601}, "scaledown_window"),
    ("knative", {"min_replicas": 1, "buffer_replicas": 1}, "buffer_replicas"),
    ("kserve", {"min_replicas": 2, "buffer_replicas": 1}, "buffer_replicas"),
]
RAW = [
    ({"initial_replicas": 1}, "initial_replicas"),
    ({"scaledown_window": 60}, "scaledown_window"),
    ({"buffer_replicas": 1}, "buffer_replicas"),
    ({"concurrency_target": 2}, "concurrency_target"),
    ({"min_replicas": 0}, "min_replicas"),
]


@pytest.mark.parametrize(("target", "knobs", "knob"), UNSUPPORTED)
def test_a_knob_the_target_cannot_express_is_an_error(truss, target, knobs, knob):
    with pytest.raises(UnsupportedKnobError) as caught:
        render(truss, target, knobs)
    named = "kserve (Serverless)" if target == "kserve" else target  # KServe's mode decides what it has
    assert (caught.value.knob, caught.value.target) == (knob, named)
    assert f"{knob} cannot be expressed on target {named}" in caught.value.message
    assert caught.value.hint


@pytest.mark.parametrize(("knobs", "knob"), RAW)
def test_kserve_raw_deployment_refuses_the_knative_knobs(truss, tmp_path: Path, knobs, knob):
    with pytest.raises(UnsupportedKnobError) as caught:
        render(truss, "kserve", knobs, "kserve: {deployment_mode: RawDeployment}\n", tmp_path)
    assert (caught.value.knob, caught.value.target) == (knob, "kserve (RawDeployment)")


def test_a_knob_from_deploy_yaml_is_refused_the_same_way(truss, tmp_path: Path):
    with pytest.raises(UnsupportedKnobError) as caught:
        render(truss, "k8s", {}, "buffer_replicas: 2\n", tmp_path)
    assert caught.value.knob == "buffer_replicas"


def test_flags_override_deploy_yaml(truss, tmp_path: Path):
    resources = render(truss, "k8s", {"max_replicas": 9}, "min_replicas: 2\nmax_replicas: 4\n", tmp_path)
    hpa = by_kind(resources, "HorizontalPodAutoscaler")[0]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 9)


def test_flags_and_file_that_contradict_each_other(truss, tmp_path: Path):
    with pytest.raises(DeployError) as caught:
        render(truss, "k8s", {"max_replicas": 1}, "min_replicas: 3\n", tmp_path)
    assert "min_replicas 3 is above max_replicas 1" in str(caught.value)
