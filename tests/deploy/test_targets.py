"""Every target x {volume, bake, docker_server, chain}: the manifests validate against their
schemas and carry what the runtime needs (cache mount, probes, drain, secrets, resources)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from packager import api
from packager.constants import (
    DYNAMIC_CONFIG_DIR,
    LIVENESS_PATH,
    PACK_SHUTDOWN_TIMEOUT,
    READINESS_PATH,
    SECRETS_DIR,
)
from packager.errors import DeployError
from packager.render.context import RUNTIME_CACHE_DIR
from packager.runtime import modules
from packager.runtime.manifest import IMAGE_MANIFEST_PATH
from packager.runtime.serving.server import DEFAULT_SHUTDOWN_TIMEOUT

from .conftest import IMAGE, TARGETS, WEIGHTS, by_kind, pod_of, validated

WORKLOAD_KIND = {"k8s": "Deployment", "knative": "Service", "kserve": "InferenceService"}


def _workload(resources: list[dict], target: str) -> dict:
    kind = WORKLOAD_KIND[target]
    found = [r for r in resources if r["kind"] == kind and
             (target != "knative" or r["apiVersion"] == "serving.knative.dev/v1")]
    assert len(found) == 1, [f"{r['kind']}/{r['metadata']['name']}" for r in resources]
    return found[0]


def _container(pod: dict) -> dict:
    assert len(pod["containers"]) == 1
    return dict(pod["containers"][0])


@pytest.mark.parametrize("target", TARGETS)
def test_volume_mode_mounts_the_node_cache_where_the_runtime_keeps_it(truss, target):
    deployment, _ = api.deploy_manifests(truss("volume"), target=target, image=IMAGE, locked=True)
    resources = validated(deployment)
    pod = pod_of(_workload(resources, target))
    container = _container(pod)
    assert {"name": "weights-cache", "mountPath": RUNTIME_CACHE_DIR} in container["volumeMounts"]
    assert {"name": "weights-cache", "hostPath": {"path": RUNTIME_CACHE_DIR, "type": "DirectoryOrCreate"}} \
        in pod["volumes"]
    # The secret is a Secret's key mounted read-only; no value anywhere.
    assert {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True} in container["volumeMounts"]
    secret = next(v for v in pod["volumes"] if v["name"] == "secrets")["secret"]
    assert secret == {"secretName": "volume-model-secrets", "optional": False,
                      "items": [{"key": "hf_access_token", "path": "hf_access_token"}]}
    # Resources from config.yaml, the accelerator as nvidia.com/gpu.
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "6Gi"},
                                      "limits": {"memory": "6Gi", "nvidia.com/gpu": "2"}}
    # startupProbe sized from the manifest's bytes at the default 100 MB/s plus 300 s of load.
    startup = container["startupProbe"]
    assert startup["httpGet"] == {"path": READINESS_PATH, "port": 8080}
    budget = math.ceil(sum(WEIGHTS.values()) / 100e6) + 300
    assert startup["failureThreshold"] * startup["periodSeconds"] >= budget
    assert (startup["failureThreshold"] - 1) * startup["periodSeconds"] < budget
    assert container["readinessProbe"]["httpGet"]["path"] == READINESS_PATH
    assert container["livenessProbe"]["httpGet"]["path"] == LIVENESS_PATH
    assert {"name": PACK_SHUTDOWN_TIMEOUT, "value": str(int(DEFAULT_SHUTDOWN_TIMEOUT))} in container["env"]
    assert container["image"] == IMAGE


@pytest.mark.parametrize("target", TARGETS)
def test_bake_mode_mounts_nothing_and_waits_for_the_load_only(truss, target):
    deployment, _ = api.deploy_manifests(truss("bake"), target=target, image=IMAGE, locked=True)
    pod = pod_of(_workload(validated(deployment), target))
    container = _container(pod)
    assert [v["name"] for v in pod["volumes"]] == ["secrets"]  # the cache is not mounted
    assert [m["mountPath"] for m in container["volumeMounts"]] == [SECRETS_DIR]
    startup = container["startupProbe"]
    assert startup["failureThreshold"] * startup["periodSeconds"] == 300  # nothing fetched at start


@pytest.mark.parametrize("target", TARGETS)
def test_docker_server_probes_go_to_the_route_proxy_port(truss, target):
    deployment, _ = api.deploy_manifests(truss("docker_server"), target=target, image=IMAGE, locked=True)
    pod = pod_of(_workload(validated(deployment), target))
    container = _container(pod)
    # server_port 8080 is the user's server: pack's proxy, and Truss's routes, are on 8081.
    assert container["ports"][0]["containerPort"] == 8081
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == 8081
    assert "volumes" not in pod and "volumeMounts" not in container
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}}


def test_k8s_drain_is_covered_by_the_grace_period(truss, tmp_path: Path):
    deploy_file = tmp_path / "d.yaml"
    deploy_file.write_text("drain_seconds: 120\n")
    deployment, _ = api.deploy_manifests(truss("none"), target="k8s", image=IMAGE, deploy_file=deploy_file)
    pod = pod_of(by_kind(validated(deployment), "Deployment")[0])
    assert {"name": PACK_SHUTDOWN_TIMEOUT, "value": "120"} in pod["containers"][0]["env"]
    assert pod["terminationGracePeriodSeconds"] > 120


def test_knative_and_kserve_serverless_carry_the_drain_as_request_timeout(truss):
    knative, _ = api.deploy_manifests(truss("none"), target="knative", image=IMAGE)
    revision = validated(knative)[0]["spec"]["template"]["spec"]
    assert revision["timeoutSeconds"] == int(DEFAULT_SHUTDOWN_TIMEOUT)
    assert "terminationGracePeriodSeconds" not in revision
    kserve, _ = api.deploy_manifests(truss("none"), target="kserve", image=IMAGE)
    predictor = validated(kserve)[0]["spec"]["predictor"]
    assert predictor["timeout"] == int(DEFAULT_SHUTDOWN_TIMEOUT)
    assert predictor["containers"][0]["name"] == "kserve-container"


@pytest.mark.parametrize("target", TARGETS)
def test_prewarm_daemonset_runs_the_images_own_downloader_on_the_same_manifest(truss, target, tmp_path: Path):
    deploy_file = tmp_path / "deploy.yaml"
    deploy_file.write_text("weights_cache:\n  prewarm: true\n  path: /mnt/nvme/pack\n"
                           "node_selector:\n  gpu: a10g\n"
                           "tolerations:\n  - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}\n")
    deployment, _ = api.deploy_manifests(truss("volume"), target=target, image=IMAGE, deploy_file=deploy_file,
                                         locked=True)
    resources = validated(deployment)
    daemonset = by_kind(resources, "DaemonSet")[0]
    assert resources[0] is daemonset  # applied first: nodes warm up while the model is scheduled
    pod = pod_of(daemonset)
    fetch = pod["initContainers"][0]
    assert fetch["image"] == IMAGE
    assert fetch["command"][1:4] == ["-m", modules.TRANSFER, IMAGE_MANIFEST_PATH]
    assert fetch["command"][-2:] == ["--cache", RUNTIME_CACHE_DIR]
    assert {"name": "weights-cache", "hostPath": {"path": "/mnt/nvme/pack", "type": "DirectoryOrCreate"}} \
        in pod["volumes"]
    # On the nodes the model lands on, with its secrets for gated repos.
    assert pod["nodeSelector"] == {"gpu": "a10g"}
    assert pod["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    assert {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True} in fetch["volumeMounts"]
    model_pod = pod_of(_workload(resources, target))
    assert model_pod["nodeSelector"] == {"gpu": "a10g"}


def test_pvc_cache(truss, tmp_path: Path):
    deploy_file = tmp_path / "deploy.yaml"
    deploy_file.write_text("weights_cache: {kind: pvc, claim: shared-weights}\n")
    deployment, _ = api.deploy_manifests(truss("volume"), target="k8s", image=IMAGE, deploy_file=deploy_file,
                                         locked=True)
    pod = pod_of(by_kind(validated(deployment), "Deployment")[0])
    assert {"name": "weights-cache", "persistentVolumeClaim": {"claimName": "shared-weights"}} in pod["volumes"]


def test_prewarm_of_baked_weights_is_an_error(truss, tmp_path: Path):
    deploy_file = tmp_path / "deploy.yaml"
    deploy_file.write_text("weights_cache: {prewarm: true}\n")
    with pytest.raises(DeployError) as caught:
        api.deploy_manifests(truss("bake"), target="k8s", image=IMAGE, deploy_file=deploy_file, locked=True)
    assert "weights_cache.prewarm" in str(caught.value) and "nothing to pre-warm" in str(caught.value)


def test_image_pull_secrets(truss, tmp_path: Path):
    deploy_file = tmp_path / "deploy.yaml"
    deploy_file.write_text("image_pull_secrets: [regcred]\nsecret_name: shared\n")
    for target in TARGETS:
        deployment, _ = api.deploy_manifests(truss("volume"), target=target, image=IMAGE, deploy_file=deploy_file,
                                             locked=True)
        pod = pod_of(_workload(validated(deployment), target))
        assert pod["imagePullSecrets"] == [{"name": "regcred"}]
        assert next(v for v in pod["volumes"] if v["name"] == "secrets")["secret"]["secretName"] == "shared"


@pytest.mark.parametrize("target", TARGETS)
def test_chain_one_workload_per_chainlet_wired_by_service_dns_names(chain_file: Path, target):
    deployment, _ = api.chains_deploy_manifests(chain_file, target=target, registry="registry.example:5000/team",
                                                tag="v1")
    resources = validated(deployment)
    config_map = resources[0]
    assert config_map["kind"] == "ConfigMap" and config_map["metadata"]["name"] == "deploy-chain-chain-config"
    wiring = json.loads(config_map["data"]["dynamic_chainlet_config"])
    host = {"k8s": "deploy-chain-embedder", "knative": "deploy-chain-embedder",
            "kserve": "deploy-chain-embedder-predictor"}[target]
    assert wiring["Embedder"] == {"predict_url": f"http://{host}.default.svc.cluster.local/v1/models/model:predict"}
    workloads = [r for r in resources if r["kind"] == WORKLOAD_KIND[target]]
    assert [w["metadata"]["name"] for w in workloads] == ["deploy-chain-embedder", "deploy-chain-front"]
    for workload in workloads:
        pod = pod_of(workload)
        assert {"name": "chain-config", "mountPath": DYNAMIC_CONFIG_DIR, "readOnly": True} \
            in pod["containers"][0]["volumeMounts"]
        assert pod["containers"][0]["image"].startswith("registry.example:5000/team/")
        assert pod["containers"][0]["image"].endswith(":v1")
    embedder, front = workloads
    # Only the entrypoint is reachable from outside the cluster.
    if target == "knative":
        assert embedder["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
        assert "networking.knative.dev/visibility" not in front["metadata"]["labels"]
    if target == "kserve":
        assert embedder["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local"
    if target == "k8s":
        services = {s["metadata"]["name"]: s for s in by_kind(resources, "Service")}
        assert set(services) == {"deploy-chain-embedder", "deploy-chain-front"}
    # The chainlet with weights gets the node cache and its GPU; the other neither.
    embedder_pod, front_pod = pod_of(embedder), pod_of(front)
    assert any(v["name"] == "weights-cache" for v in embedder_pod["volumes"])
    assert not any(v["name"] == "weights-cache" for v in front_pod["volumes"])
    assert embedder_pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_chain_entrypoint_service_type(chain_file: Path, tmp_path: Path):
    deploy_file = tmp_path / "chain-deploy.yaml"
    deploy_file.write_text("service_type: LoadBalancer\nchainlets:\n  Embedder: {min_replicas: 2}\n")
    deployment, _ = api.chains_deploy_manifests(chain_file, target="k8s", registry="r.example/t", tag="v2",
                                                deploy_file=deploy_file)
    resources = validated(deployment)
    types = {s["metadata"]["name"]: s["spec"]["type"] for s in by_kind(resources, "Service")}
    assert types == {"deploy-chain-embedder": "ClusterIP", "deploy-chain-front": "LoadBalancer"}
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in by_kind(resources, "Deployment")}
    assert replicas == {"deploy-chain-embedder": 2, "deploy-chain-front": 1}


def test_chain_flags_win_over_chainlet_entries(chain_file: Path, tmp_path: Path):
    deploy_file = tmp_path / "chain-deploy.yaml"
    deploy_file.write_text("chainlets:\n  Embedder: {min_replicas: 2}\n")
    deployment, _ = api.chains_deploy_manifests(chain_file, target="k8s", registry="r.example/t", tag="v2",
                                                deploy_file=deploy_file, knobs={"min_replicas": 3})
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in by_kind(validated(deployment), "Deployment")}
    assert replicas == {"deploy-chain-embedder": 3, "deploy-chain-front": 3}


def test_chain_entry_naming_no_chainlet(chain_file: Path, tmp_path: Path):
    deploy_file = tmp_path / "chain-deploy.yaml"
    deploy_file.write_text("chainlets:\n  Embeder: {min_replicas: 2}\n")
    with pytest.raises(DeployError, match="chainlets.Embeder names no chainlet"):
        api.chains_deploy_manifests(chain_file, target="k8s", registry="r.example/t", tag="v2",
                                    deploy_file=deploy_file)
