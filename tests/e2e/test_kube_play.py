"""`pack deploy render --target k8s` run for real: podman plays the rendered Deployment as two
replicas on this machine's host network, sharing the node cache the manifest mounts (a hostPath).

What it shows, counted where it happens:
- the first replica downloads every weight byte from the hub (MockHub counts what it sent), the
  second downloads 0 bytes: its prefetch finds the blobs in the shared node cache;
- each replica's prefetch started before the first line of the model's module ran (the runtime's
  start-up timeline at /metrics against the model's own clock, both seconds since the process
  started, read from /proc);
- the HF token comes from a Kubernetes Secret manifest mounted read-only at /secrets: the repo is
  private, so the prefetch succeeds only with it, and the model reads the same value;
- readiness answers 503 until load() returns (load() waits on a file the test creates), then 200;
- no network device is added (`ip -br link` before and while the replicas run).

The pod specs are the rendered ones, adapted only where one machine is not a cluster
(host_network_replica; test_played_the_rendered_deployment_as_two_replicas holds the difference
to that): on the host network every pod shares one port space, so each replica is played as its
own one-replica Deployment whose runtime listens on a port of its own (INFERENCE_SERVER_PORT, the
probes pointed at it), and HF_ENDPOINT names the local hub. A user running the manifest with
podman does the same; on a cluster each pod has its own network namespace and none of it is
needed. Podman 4.3 (Debian 12) also needs (for_podman, apply_secret): no `ports:` (it turns them
into host port mappings, which the host network refuses), `optional: false` on the secret volume
(without it kube play panics), and the Secret stored decoded (its kube play writes `data` values
still base64-encoded and drops `stringData`: podman issue 16625, fixed in 4.4).

Everything the module creates in podman (pods, containers, the secret and its volume, the image,
the pause image when podman built it here) and the node-cache directory is removed at the end;
test_nothing_left_behind checks that. Skips (never fails) without podman: scripts/setup-dev.sh
installs and configures it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import secrets as random_secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from packager.constants import INFERENCE_SERVER_PORT
from packager.runner import READY_PATH
from tests.e2e.conftest import Resources, build, pack_cli
from tests.e2e_runtime.conftest import http_request, timeline_doc, tl_stage
from tests.fixtures.docker_env import SETUP, free_port_block, unique
from tests.fixtures.hf_hub import MockHub

pytestmark = pytest.mark.docker

MiB = 1024 * 1024
REPO_ID = "e2e-kube/weights"
WEIGHT_FILES = {f"model-{i:05d}-of-00003.safetensors": 8 * MiB for i in range(1, 4)}
VOLUME_FOLDER = "weights"
SECRET = "hf_access_token"
IMPORT_SECONDS = 1.0
GATE = "/tmp/pack-e2e-load-gate"  # load() returns once this file exists in the container
REPLICAS = 2
PAUSE_IMAGE_PREFIX = "localhost/podman-pause:"
# scripts/setup-dev.sh's podman settings (host network, the rlimits runc may set on this machine).
PODMAN_CONF = Path("/etc/containers/containers.conf.d/50-pack-dev.conf")
CLOCK_SLACK = 0.05  # /proc start times have clock-tick (10 ms) resolution

# The model's clock is the runtime timeline's: seconds since its process started (from /proc).
MODEL_PY = '''\
import hashlib
import os
import time


def _process_age():
    with open("/proc/self/stat") as fh:
        start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as fh:
        return float(fh.read().split()[0]) - start_ticks / os.sysconf("SC_CLK_TCK")


_ORIGIN = (_process_age(), time.monotonic())


def since_start():
    return _ORIGIN[0] + time.monotonic() - _ORIGIN[1]


MARKS = {"module_start": since_start()}
_busy_until = time.thread_time() + %(import_seconds)s  # a slow import (like `import torch`)
while time.thread_time() < _busy_until:
    sum(range(1000))
MARKS["import_end"] = since_start()


class Model:
    def __init__(self, config, secrets, lazy_data_resolver):
        self._secrets = secrets
        self._resolver = lazy_data_resolver
        self._dir = os.path.join("/app/model_cache", config["model_cache"][0]["volume_folder"])

    def load(self):
        self._resolver.block_until_download_complete()
        while not os.path.exists("%(gate)s"):
            time.sleep(0.02)
        MARKS["load_end_monotonic"] = time.monotonic()
        MARKS["load_end"] = since_start()

    def predict(self, model_input):
        weights = {}
        for name in sorted(os.listdir(self._dir)):
            with open(os.path.join(self._dir, name), "rb") as fh:
                weights[name] = hashlib.sha256(fh.read()).hexdigest()
        secrets_dir = "/secrets"
        return {
            "marks": MARKS,
            "weights": weights,
            "secret": self._secrets.get("%(secret)s"),
            "secret_files": sorted(os.listdir(secrets_dir)) if os.path.isdir(secrets_dir) else [],
            "secrets_writable": os.access(secrets_dir, os.W_OK),
        }
'''


# --- podman ------------------------------------------------------------------------------------
def podman(*args: str, input: str | None = None, check: bool = True, timeout: float = 300
           ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", *args], input=input, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def podman_names(kind: str) -> set[str]:
    """Names of podman's pods, containers (all), volumes, secrets or images (repo:tag)."""
    fmt = {"pod": "{{.Name}}", "container": "{{.Names}}", "volume": "{{.Name}}", "secret": "{{.Name}}",
           "image": "{{.Repository}}:{{.Tag}}"}[kind]
    args = {"pod": ["pod", "ps"], "container": ["ps", "-a"], "volume": ["volume", "ls"],
            "secret": ["secret", "ls"], "image": ["images"]}[kind]
    out = podman(*args, "--format", fmt).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def network_devices() -> list[str]:
    """`ip -br link`: one line per device (name, state, address, flags)."""
    return sorted(subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True
                                 ).stdout.splitlines())


@dataclass
class PodmanState:
    version: tuple[int, ...]
    devices: list[str]  # `ip -br link` before anything was played
    names: dict[str, set[str]]  # what podman held before, by kind


@pytest.fixture(scope="module")
def podman_state() -> PodmanState:
    if shutil.which("podman") is None or not PODMAN_CONF.is_file():
        pytest.skip(f"podman is not installed or not configured ({PODMAN_CONF}); {SETUP}")
    info = podman("version", "--format", "{{.Client.Version}}", check=False)
    if info.returncode != 0:
        pytest.skip(f"podman does not run: {info.stderr.strip()}; {SETUP}")
    version = tuple(int(p) for p in info.stdout.strip().split("-")[0].split(".")[:3])
    return PodmanState(version, network_devices(),
                       {kind: podman_names(kind) for kind in ("pod", "container", "volume", "secret", "image")})


# --- the manifests -----------------------------------------------------------------------------
def k8s_secret(name: str, values: dict[str, str]) -> dict[str, Any]:
    """A Secret manifest as `kubectl create secret generic NAME --from-literal=... -o yaml` writes it."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}


def apply_secret(manifest: dict[str, Any], path: Path, version: tuple[int, ...]) -> None:
    """Put a Secret manifest into podman for the pods' secret volumes.

    Podman 4.4 and later: `podman kube play` of the manifest itself. Podman 4.3 stores it but reads
    it back with a YAML decoder that ignores the Kubernetes field tags, so a secret volume gets
    each `data` value still base64-encoded and no `stringData` at all (podman issue 16625): there
    the same object is stored with its values decoded, which that reader passes through as is."""
    if version >= (4, 4):
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        podman("kube", "play", str(path))
        return
    decoded = {**manifest, "data": {k: base64.b64decode(v).decode() for k, v in manifest["data"].items()}}
    podman("secret", "create", manifest["metadata"]["name"], "-", input=json.dumps(decoded))


def host_network_replica(deployment: dict[str, Any], index: int, port: int, env: dict[str, str]
                         ) -> dict[str, Any]:
    """The rendered Deployment as replica `index` on one machine's host network, where every pod
    shares one port space: its own name and one replica, the runtime on a port of its own
    (INFERENCE_SERVER_PORT; the container port and every probe follow), `env` added (where the
    weight sources are, as this machine sees them). Volumes, mounts, image, resources and the
    rest stay as rendered."""
    replica = copy.deepcopy(deployment)
    replica["metadata"]["name"] = f"{deployment['metadata']['name']}-{index}"
    replica["spec"]["replicas"] = 1
    extra = {INFERENCE_SERVER_PORT: str(port), **env}
    for container in replica["spec"]["template"]["spec"]["containers"]:
        kept = [e for e in container.get("env", []) if e["name"] not in extra]
        container["env"] = kept + [{"name": k, "value": v} for k, v in extra.items()]
        for spec in container.get("ports", []):
            spec["containerPort"] = port
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            action = container.get(probe, {}).get("httpGet")
            if action is not None:
                action["port"] = port
    return replica


def for_podman(deployment: dict[str, Any], version: tuple[int, ...]) -> dict[str, Any]:
    """What podman 4.3 (Debian 12) cannot take as Kubernetes has it, each a no-op on a cluster:
    `ports:` becomes host port mappings, which the host network refuses ("PortMappings can only
    be used with Bridge or slirp4netns networking"), so they go; and a secret volume without
    `optional` makes kube play dereference a nil pointer (a panic in VolumeFromSecret), so it
    gets Kubernetes' default, optional: false."""
    if version >= (4, 4):
        return deployment
    adapted = copy.deepcopy(deployment)
    spec = adapted["spec"]["template"]["spec"]
    for container in spec["containers"]:
        container.pop("ports", None)
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            volume["secret"].setdefault("optional", False)
    return adapted


def render_manifests(truss: Path, image: str, out: Path) -> list[dict[str, Any]]:
    """`pack deploy render TRUSS --target k8s --image IMAGE -o OUT`, as a user runs it: every
    document of every file it wrote."""
    done = pack_cli("deploy", "render", str(truss), "--target", "k8s", "--image", image, "-o", str(out))
    assert done.returncode == 0, f"pack deploy render -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    docs = []
    for path in sorted(out.rglob("*.y*ml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs, f"pack deploy render wrote no manifest into {out}: {sorted(out.rglob('*'))}"
    return docs


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"want one {kind}, got {[d.get('kind') for d in docs]}"
    return found[0]


# --- watching a replica come up ----------------------------------------------------------------
def _status(port: int, path: str) -> int:
    try:
        return http_request(port, "GET", path, timeout=2.0)[0]
    except OSError:
        return 0


def _stages(port: int) -> dict[str, float]:
    try:
        return timeline_doc(port)["stages"]
    except (OSError, AssertionError, ValueError):
        return {}


@dataclass
class Replica:
    name: str  # the Deployment played
    port: int
    container_name: str  # the model container's name in the pod spec
    manifest: Path
    container: str = ""  # podman's name for it (pod_container)
    polls: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, readiness status)
    gate_at: float = 0.0  # monotonic time the gate file was created
    fetched_bytes: int = 0  # counted at the hub, from play to ready
    timeline: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)  # the model's predict answer
    mounts: list[dict[str, Any]] = field(default_factory=list)  # podman inspect .Mounts


def pod_container(deployment: str, container: str) -> str:
    """Podman's name for the container of the one pod it played for a Deployment:
    <pod>-<container>, the pod <deployment>-pod-0 in podman 4.3 (one pod per replica)."""
    found = [n for n in podman_names("container") if n.startswith(f"{deployment}-pod") and n.endswith(f"-{container}")]
    assert len(found) == 1, (deployment, container, found)
    return found[0]


def _logs(container: str) -> str:
    return podman("logs", "--tail", "60", container, check=False).stdout


def bring_up(replica: Replica, hub: MockHub, timeout: float = 240.0) -> None:
    """Play the replica's manifest and watch it: readiness polled from the start; once the
    download ended and load() is waiting (the timeline has prefetch_end and init_end), a little
    longer; then the gate file is created and readiness polled until 200."""
    hub.reset_stats()
    podman("kube", "play", "--network", "host", str(replica.manifest))
    replica.container = pod_container(replica.name, replica.container_name)
    deadline = time.monotonic() + timeout
    waiting_since: float | None = None
    while True:
        now = time.monotonic()
        assert now < deadline, f"{replica.name} not ready after {timeout} s:\n{_logs(replica.container)}"
        status = _status(replica.port, READY_PATH)
        replica.polls.append((now, status))
        if not replica.gate_at:
            stages = _stages(replica.port)
            if waiting_since is None and {"prefetch_end", "init_end"} <= set(stages):
                waiting_since = now
            # Half a second of polls while load() waits, then open the gate.
            if waiting_since is not None and now - waiting_since > 0.5:
                replica.gate_at = time.monotonic()
                podman("exec", replica.container, "touch", GATE)
        elif status == 200:
            break
        time.sleep(0.05)
    replica.fetched_bytes = hub.file_bytes()
    replica.timeline = timeline_doc(replica.port)
    status, body = http_request(replica.port, "POST", "/v1/models/model:predict", {}, timeout=60)
    assert status == 200, body[:2000]
    replica.report = json.loads(body)
    replica.mounts = json.loads(podman("inspect", replica.container, "--format", "{{json .Mounts}}").stdout)


# --- the scenario ------------------------------------------------------------------------------
@dataclass
class KubePlay:
    state: PodmanState
    hub: MockHub
    token: str
    expected: dict[str, str]  # weight file -> sha256
    cache_dir: Path  # the node cache: the hostPath both replicas mount
    docs: list[dict[str, Any]]  # what pack deploy render wrote
    replicas: list[Replica]
    devices_running: list[str]  # `ip -br link` while both replicas run
    image: str  # the image as podman stores it
    secret_name: str

    @property
    def total_bytes(self) -> int:
        return sum(WEIGHT_FILES.values())

    def clean_up(self) -> None:
        """Remove all the module made in podman and on disk (idempotent)."""
        for replica in self.replicas:
            podman("kube", "down", str(replica.manifest), check=False)
            for pod in podman_names("pod"):
                if pod.startswith(f"{replica.name}-pod"):  # what kube down left
                    podman("pod", "rm", "--force", pod, check=False)
        podman("secret", "rm", self.secret_name, check=False)
        podman("volume", "rm", "--force", self.secret_name, check=False)  # the secret's volume
        podman("rmi", "--force", self.image, check=False)
        for pause in podman_names("image") - self.state.names["image"]:
            if pause.startswith(PAUSE_IMAGE_PREFIX):  # built by podman for the first pod here
                podman("rmi", pause, check=False)
        shutil.rmtree(self.cache_dir, ignore_errors=True)


def write_truss(root: Path, name: str, secret_name: str, cache_dir: Path) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.py").write_text(
        MODEL_PY % {"import_seconds": IMPORT_SECONDS, "gate": GATE, "secret": SECRET})
    (root / "config.yaml").write_text(
        f"model_name: {name}\n"
        "python_version: py311\n"
        f"secrets:\n  {SECRET}: null\n"
        "model_cache:\n"
        f"  - repo_id: {REPO_ID}\n"
        "    revision: main\n"
        "    use_volume: true\n"
        f"    volume_folder: {VOLUME_FOLDER}\n"
    )
    # The warm pool of the issue: two replicas from the start, the node cache at a path of this
    # test's own, the Secret under a name of its own.
    (root / "deploy.yaml").write_text(
        f"name: {name}\n"
        f"min_replicas: {REPLICAS}\n"
        f"secret_name: {secret_name}\n"
        f"weights_cache:\n  kind: hostPath\n  path: {cache_dir}\n"
    )
    return root


def docker_to_podman(ref: str) -> str:
    """`docker save REF | podman load`: the image pack built, in podman's own storage; its name there."""
    save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
    assert save.stdout is not None
    load = subprocess.run(["podman", "load"], stdin=save.stdout, capture_output=True, text=True, check=False)
    save.stdout.close()
    assert save.wait() == 0 and load.returncode == 0, f"docker save | podman load:\n{load.stdout}\n{load.stderr}"
    # "Loaded image: localhost/NAME:TAG" (podman 4.3) or "Loaded image(s): ..." (other versions)
    loaded = [line.split(":", 1)[1].strip() for line in load.stdout.splitlines() if line.startswith("Loaded image")]
    assert len(loaded) == 1, load.stdout
    return loaded[0]


@pytest.fixture(scope="module")
def kube_play(podman_state: PodmanState, e2e_env: pytest.MonkeyPatch, resources: Resources,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubePlay]:
    token = "hf_" + random_secrets.token_hex(20)
    name = unique("pack-e2e-kube")
    secret_name = f"{name}-secrets"
    root = tmp_path_factory.mktemp("kube-play")
    cache_dir = root / "node-cache"
    ports = free_port_block(REPLICAS)
    with MockHub() as hub, pytest.MonkeyPatch.context() as mp:
        repo = hub.add_repo(REPO_ID, private=True, tokens={token})
        repo.commit({path: os.urandom(size) for path, size in WEIGHT_FILES.items()})
        expected = {path: blob.sha256 for path, blob in repo.resolve("main").files.items()}
        # The host side (pack's lock) resolves the private repo with the token; the pods get it
        # only from the mounted Secret.
        mp.setenv("HF_ENDPOINT", hub.url)
        mp.setenv("HF_TOKEN", token)
        truss = write_truss(root / "truss", name, secret_name, cache_dir)
        built = build(truss, resources.tag("kube-play"))
        mp.delenv("HF_TOKEN")
        play = KubePlay(podman_state, hub, token, expected, cache_dir, [], [], [], "", secret_name)
        try:
            play.image = docker_to_podman(built.tag)
            play.docs = render_manifests(truss, play.image, root / "manifests")
            apply_secret(k8s_secret(secret_name, {SECRET: token}), root / "secret.yaml", podman_state.version)
            deployment = only(play.docs, "Deployment")
            for index in range(deployment["spec"]["replicas"]):
                replica_doc = for_podman(host_network_replica(deployment, index, ports + index,
                                                              {"HF_ENDPOINT": hub.url}), podman_state.version)
                manifest = root / f"replica-{index}.yaml"
                manifest.write_text(yaml.safe_dump(replica_doc, sort_keys=False))
                container = replica_doc["spec"]["template"]["spec"]["containers"][0]["name"]
                replica = Replica(replica_doc["metadata"]["name"], ports + index, container, manifest)
                play.replicas.append(replica)
                bring_up(replica, hub)
            play.devices_running = network_devices()
            yield play
        finally:
            play.clean_up()


# --- the tests ---------------------------------------------------------------------------------
def differences(rendered: Any, played: Any, path: str = "") -> set[str]:
    """Paths (a.b[0].c) where two YAML documents differ."""
    if isinstance(rendered, dict) and isinstance(played, dict):
        return {d for key in rendered.keys() | played.keys()
                for d in differences(rendered.get(key), played.get(key), f"{path}.{key}".lstrip("."))}
    if isinstance(rendered, list) and isinstance(played, list) and len(rendered) == len(played):
        pairs = enumerate(zip(rendered, played, strict=True))
        return {d for i, (a, b) in pairs for d in differences(a, b, f"{path}[{i}]")}
    return set() if rendered == played else {path}


def test_played_the_rendered_deployment_as_two_replicas(kube_play: KubePlay) -> None:
    """Each replica played is the rendered Deployment but for what one host network needs
    (host_network_replica) and what podman 4.3 cannot take (for_podman)."""
    rendered = only(kube_play.docs, "Deployment")
    assert rendered["spec"]["replicas"] == REPLICAS == len(kube_play.replicas)
    pod = "spec.template.spec"
    allowed = {"metadata.name", "spec.replicas", f"{pod}.containers[0].env",
               *(f"{pod}.containers[0].{probe}.httpGet.port" for probe in ("startupProbe", "readinessProbe",
                                                                           "livenessProbe"))}
    if kube_play.state.version < (4, 4):
        secret_volumes = [i for i, v in enumerate(rendered["spec"]["template"]["spec"]["volumes"]) if "secret" in v]
        allowed |= {f"{pod}.containers[0].ports", *(f"{pod}.volumes[{i}].secret.optional" for i in secret_volumes)}
    else:
        allowed.add(f"{pod}.containers[0].ports[0].containerPort")
    for replica in kube_play.replicas:
        played = yaml.safe_load(replica.manifest.read_text())
        changed = differences(rendered, played)
        assert changed <= allowed, sorted(changed - allowed)
        env = {e["name"]: e["value"] for e in played["spec"]["template"]["spec"]["containers"][0]["env"]}
        rendered_env = {e["name"]: e["value"] for e in rendered["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env == {**rendered_env, INFERENCE_SERVER_PORT: str(replica.port), "HF_ENDPOINT": kube_play.hub.url}


def test_first_replica_fetches_every_byte_the_second_none(kube_play: KubePlay) -> None:
    first, second = kube_play.replicas
    assert first.fetched_bytes == kube_play.total_bytes
    assert first.timeline["download"]["bytes_downloaded"] == kube_play.total_bytes, first.timeline
    assert second.fetched_bytes == 0, kube_play.hub.counts()
    download = second.timeline["download"]
    assert download["ok"] is True and download["bytes_downloaded"] == 0, download
    assert download["cache_hits"] == len(WEIGHT_FILES), download
    for replica in kube_play.replicas:  # and both serve the right bytes
        assert replica.report["weights"] == kube_play.expected


def test_replicas_share_the_node_cache_the_manifest_mounts(kube_play: KubePlay) -> None:
    volumes = {v["name"]: v for v in only(kube_play.docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    host_paths = {v["hostPath"]["path"] for v in volumes.values() if "hostPath" in v}
    assert host_paths == {str(kube_play.cache_dir)}, volumes
    for replica in kube_play.replicas:
        binds = {m["Source"] for m in replica.mounts if m["Type"] == "bind"}
        assert str(kube_play.cache_dir) in binds, replica.mounts
    # The content-addressed cache on the node holds each weight's bytes once.
    cached = {hashlib.sha256(p.read_bytes()).hexdigest() for p in kube_play.cache_dir.rglob("*")
              if p.is_file() and p.stat().st_size in set(WEIGHT_FILES.values())}
    assert set(kube_play.expected.values()) <= cached


def test_prefetch_starts_before_the_model_import(kube_play: KubePlay) -> None:
    for replica in kube_play.replicas:
        prefetch_start = tl_stage(replica.timeline, "prefetch_start")
        marks = replica.report["marks"]
        # Before the first line of model.py ran, not merely before the import ended.
        assert prefetch_start <= marks["module_start"] + CLOCK_SLACK, (replica.name, replica.timeline, marks)
        assert prefetch_start < tl_stage(replica.timeline, "import_end")
        assert marks["import_end"] - marks["module_start"] >= IMPORT_SECONDS * 0.9


def test_readiness_503_until_load_ends(kube_play: KubePlay) -> None:
    for replica in kube_play.replicas:
        answered = [(t, s) for t, s in replica.polls if s]
        before_gate = [s for t, s in answered if t < replica.gate_at]
        assert before_gate and set(before_gate) == {503}, (replica.name, replica.polls)
        first_200 = next(t for t, s in answered if s == 200)
        assert first_200 > replica.gate_at
        # load() ended after the gate opened (same monotonic clock: same kernel) and before ready.
        marks, stages = replica.report["marks"], replica.timeline["stages"]
        assert marks["load_end_monotonic"] >= replica.gate_at
        assert marks["load_end"] <= tl_stage(replica.timeline, "ready") + CLOCK_SLACK, (marks, stages)


def test_secret_comes_from_the_kubernetes_secret_manifest(kube_play: KubePlay) -> None:
    deployment = only(kube_play.docs, "Deployment")
    assert kube_play.token not in json.dumps(kube_play.docs)  # no value in any rendered manifest
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert [v["secret"]["secretName"] for v in volumes if "secret" in v] == [kube_play.secret_name]
    for replica in kube_play.replicas:
        assert replica.report["secret"] == kube_play.token
        assert replica.report["secret_files"] == [SECRET]
        assert replica.report["secrets_writable"] is False
        # The private repo answered the first replica's prefetch: the token reached it.
    assert kube_play.replicas[0].timeline["download"]["ok"] is True


def test_no_network_device_added(kube_play: KubePlay) -> None:
    assert kube_play.devices_running == kube_play.state.devices


def test_nothing_left_behind(kube_play: KubePlay) -> None:
    kube_play.clean_up()
    for kind, before in kube_play.state.names.items():
        assert podman_names(kind) == before, kind
    assert not kube_play.cache_dir.exists()
    assert network_devices() == kube_play.state.devices
