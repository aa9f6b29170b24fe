"""The schema checks cannot pass by accident: each one rejects a resource with an unknown field or
a wrong type, and a resource no schema is found for fails; what the manifests name in the runtime
(its metric) is what the runtime serves."""

from __future__ import annotations

import copy

import pytest

from packager import api
from packager.deploy.scaling import IN_FLIGHT_METRIC
from packager.runtime.serving import metrics
from packager.runtime.timeline import Timeline

from . import schemas
from .conftest import IMAGE, TARGETS, validated


def _rendered(truss, target: str) -> list[dict]:
    knobs = {"max_replicas": 2}
    deployment, _ = api.deploy_manifests(truss("volume"), target=target, image=IMAGE, knobs=knobs, locked=True)
    return validated(deployment)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("where", ["top", "container", "probe", "volume"])
def test_an_unknown_field_fails(truss, target, where):
    for resource in _rendered(truss, target):
        broken = copy.deepcopy(resource)
        if where == "top":
            broken["spec"]["replicaz"] = 1
        else:
            if resource["kind"] not in ("Deployment", "Service", "InferenceService") or \
                    resource["apiVersion"] == "v1":
                continue  # HPA, DaemonSet, plain Service: covered by the top-level case
            pod = broken["spec"]["predictor"] if resource["kind"] == "InferenceService" \
                else broken["spec"]["template"]["spec"]
            if where == "container":
                pod["containers"][0]["imagePullPolicyy"] = "Always"
            elif where == "probe":
                pod["containers"][0]["startupProbe"]["httpGet"]["paht"] = "/"
            else:
                pod["volumes"][0]["hostPath"]["kind"] = "Directory"
        with pytest.raises(Exception) as caught:  # noqa: B017 - each validator raises its own kind
            schemas.validate(broken)
        assert not isinstance(caught.value, schemas.SchemaMissing)


@pytest.mark.parametrize("target", TARGETS)
def test_a_wrong_type_fails(truss, target):
    workload = next(r for r in _rendered(truss, target) if r["kind"] != "DaemonSet")
    broken = copy.deepcopy(workload)
    pod = broken["spec"]["predictor"] if broken["kind"] == "InferenceService" else broken["spec"]["template"]["spec"]
    pod["containers"][0]["ports"][0]["containerPort"] = "8080"
    with pytest.raises(Exception):  # noqa: B017
        schemas.validate(broken)


def test_a_resource_with_no_schema_fails():
    scaled = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "m"},
              "spec": {"scaleTargetRef": {"name": "m"}}}
    with pytest.raises(schemas.SchemaMissing):
        schemas.validate(scaled)
    with pytest.raises(schemas.SchemaMissing):
        schemas.validate({"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "m"}})
    with pytest.raises(schemas.SchemaMissing):
        schemas.validate({"apiVersion": "serving.knative.dev/v1", "kind": "Route", "metadata": {"name": "m"}})


def test_the_kserve_schema_comes_from_the_sdk_models():
    schema = schemas.kserve_schema("V1beta1InferenceService")
    predictor = schema["$defs"]["V1beta1PredictorSpec"]
    assert predictor["additionalProperties"] is False
    assert {"minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "containers"} <= set(predictor["properties"])
    assert schema["$defs"]["V1beta1InferenceServiceSpec"]["required"] == ["predictor"]


def test_the_hpa_metric_is_one_the_runtime_serves():
    exposition = metrics.render(Timeline(), None)
    assert f"# TYPE {IN_FLIGHT_METRIC} gauge" in exposition


def test_knative_pod_spec_is_checked_as_a_core_pod_spec(truss):
    """The Knative CRD leaves feature-flagged fields open (tolerations, hostPath); the core
    PodSpec check closes them."""
    service = next(r for r in _rendered(truss, "knative") if r["apiVersion"] == "serving.knative.dev/v1")
    broken = copy.deepcopy(service)
    broken["spec"]["template"]["spec"]["tolerations"] = [{"key": "gpu", "operater": "Exists"}]
    with pytest.raises(Exception):  # noqa: B017
        schemas.validate(broken)
