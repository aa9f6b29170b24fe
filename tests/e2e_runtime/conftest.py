"""Fixtures for the built-image runtime tests: a paced MockHub serving 256 MiB of generated
weights, a truss whose model.py simulates a slow import and records what it saw, and helpers that
start containers on the host network and watch them come up.

Everything skips (never fails) without a Docker engine or the offline base image (the fixtures of
tests/fixtures/docker_env.py). Images are built once per module; every tag, container and volume
has a unique name and is removed when its module ends.

The stand-in is paced to PACE_BYTES_PER_S over all connections together, so the 256 MiB
download takes at least ~1 s however fast the machine is: long enough to measure the hidden time,
short enough to finish well inside the 2 s simulated import.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import tests.fixtures.hf_hub as hf_hub_module
from packager.engine import RunRequest, open_engine
from packager.engine.containers import DockerContainer
from packager.render.context import RUNTIME_CACHE_DIR
from packager.runner import READY_PATH, source_endpoints
from tests.fixtures.docker_env import (  # noqa: F401  (re-exported to the tests of this directory)
    BASE_IMAGE,
    free_port,
    isolated_env,
    unique,
)
from tests.fixtures.hf_hub import MockHub

MiB = 1024 * 1024
REPO_ID = "e2e-runtime/weights"
VOLUME_FOLDER = "weights"
FILE_COUNT = 4
FILE_SIZE = 64 * MiB  # 256 MiB in all
PACE_BYTES_PER_S = 256 * MiB
IMPORT_SECONDS = 2.0
SECRET_NAMES = ("file_only", "env_only", "both", "flag_secret", "missing")

# The user's model. Its clock is the runtime timeline's: seconds since the process started, read
# from /proc the same way. It records when its module started and ended (after 2 s of CPU-bound
# "import" work), when __init__ started, and whether, at that moment, every weight file already
# existed and matched its sha256 (data/expected.json, computed on the host).
MODEL_PY = '''\
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor


def process_age():
    try:
        with open("/proc/self/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


_AGE0, _MONO0 = process_age(), time.monotonic()


def now():
    return _AGE0 + (time.monotonic() - _MONO0)


MARKS = {"module_start": now()}
# A slow library import (like `import torch`): CPU work competing with the download.
_end, _x = time.thread_time() + float(os.environ.get("E2E_IMPORT_SECONDS", "%(import_seconds)s")), 0
while time.thread_time() < _end:
    for _i in range(20000):
        _x += _i
MARKS["import_end"] = now()


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        for chunk in iter(lambda: fh.read(8 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Model:
    # Named parameters (no **kwargs): the runtime must pass exactly these by signature.
    def __init__(self, config, data_dir, secrets, lazy_data_resolver):
        MARKS["init_start"] = now()
        self._secrets = secrets
        self._resolver = lazy_data_resolver
        self._dir = os.path.join("/app/model_cache", config["model_cache"][0]["volume_folder"])
        with open(os.path.join(str(data_dir), "expected.json")) as fh:
            self._expected = json.load(fh)
        self.in_place_at_init = self.check()
        MARKS["init_end"] = now()

    def check(self):
        """{name: "ok" | "missing" | "mismatch"} for every expected weight file, right now."""
        names = sorted(self._expected)
        present = [n for n in names if os.path.isfile(os.path.join(self._dir, n))]
        with ThreadPoolExecutor(2) as pool:
            digests = dict(zip(present, pool.map(sha256, [os.path.join(self._dir, n) for n in present])))
        return {n: "missing" if n not in digests else "ok" if digests[n] == self._expected[n] else "mismatch"
                for n in names}

    def load(self):
        fail = os.environ.get("E2E_FAIL", "")
        if fail == "load":
            raise RuntimeError("e2e: load() failed on purpose (E2E_FAIL=load)")
        if fail != "no_block":
            self._resolver.block_until_download_complete()
        MARKS["load_end"] = now()

    def predict(self, model_input):
        if "stream" in model_input:
            return self._stream(int(model_input["stream"]), float(model_input.get("delay", 0)))
        if "secrets" in model_input:
            return {
                "values": {name: self._secrets.get(name) for name in model_input["secrets"]},
                "files": sorted(os.listdir("/secrets")) if os.path.isdir("/secrets") else [],
                "env": sorted(k for k in os.environ if k.startswith("TRUSS_SECRET_")),
            }
        if model_input.get("report"):
            return {"marks": MARKS, "in_place_at_init": self.in_place_at_init, "in_place_now": self.check()}
        return {"echo": model_input, "sum": sum(model_input.get("numbers", []))}

    def _stream(self, n, delay):
        for i in range(n):
            if i:
                time.sleep(delay)
            yield f"chunk-{i};"
'''


def config_yaml(model_name: str) -> str:
    secrets = "".join(f"  {name}: null\n" for name in SECRET_NAMES)
    return (
        f"model_name: {model_name}\n"
        "python_version: py311\n"
        "resources:\n  cpu: \"1\"\n  memory: 2Gi\n"
        f"secrets:\n{secrets}"
        "model_cache:\n"
        f"  - repo_id: {REPO_ID}\n"
        "    revision: main\n"
        "    use_volume: true\n"
        f"    volume_folder: {VOLUME_FOLDER}\n"
    )


def write_truss(root: Path, model_name: str, expected: dict[str, str]) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "config.yaml").write_text(config_yaml(model_name))
    (root / "model" / "model.py").write_text(MODEL_PY % {"import_seconds": IMPORT_SECONDS})
    (root / "data" / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True))
    return root


# --- the stand-in ------------------------------------------------------------------------------
class Pacer:
    """One shared budget of bytes per second for every connection of the hub."""

    def __init__(self, rate: float):
        self.rate = rate
        self._lock = threading.Lock()
        self._free_at = 0.0

    def take(self, nbytes: int) -> None:
        with self._lock:
            start = max(time.monotonic(), self._free_at)
            self._free_at = start + nbytes / self.rate
            until = self._free_at
        delay = until - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class _PacedWriter:
    def __init__(self, raw: Any, pacer: Pacer):
        self._raw, self._pacer = raw, pacer

    def write(self, data: bytes) -> int:
        self._pacer.take(len(data))
        return self._raw.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def paced_hub(rate: float) -> MockHub:
    """A started MockHub whose responses are paced to `rate` bytes/s in all (its handler's
    output stream is wrapped; requests, faults and byte counts behave as usual)."""
    pacer = Pacer(rate)
    original = hf_hub_module.make_handler

    def make_handler(hub: MockHub, origin: str):
        base = original(hub, origin)

        class Paced(base):  # type: ignore[misc, valid-type]
            def setup(self) -> None:
                super().setup()
                self.wfile = _PacedWriter(self.wfile, pacer)

        return Paced

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hf_hub_module, "make_handler", make_handler)
        return MockHub().start()


def weight_bytes(index: int, size: int) -> bytes:
    rng, out = random.Random(f"e2e-runtime-{index}"), bytearray()
    while len(out) < size:
        out += rng.randbytes(min(64 * MiB, size - len(out)))
    return bytes(out)


@dataclass
class Weights:
    hub: MockHub
    expected: dict[str, str]  # file name (inside the volume folder) -> sha256

    @property
    def total_bytes(self) -> int:
        return FILE_COUNT * FILE_SIZE


@pytest.fixture(scope="session")
def rt_env(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[pytest.MonkeyPatch]:
    """A clean process environment for the session: no ambient tokens, secrets or endpoints;
    rendered contexts under a temporary XDG_CACHE_HOME."""
    mp = isolated_env(tmp_path_factory.mktemp("e2e-runtime-env"), ("TRUSS_SECRET_", "PACK_"))
    yield mp
    mp.undo()


@pytest.fixture(scope="session")
def weights(rt_env: pytest.MonkeyPatch) -> Iterator[Weights]:
    """The paced stand-in with REPO_ID (FILE_COUNT x FILE_SIZE); HF_ENDPOINT points at it, for
    the host-side lock and (through runner.source_endpoints) for the containers."""
    hub = paced_hub(PACE_BYTES_PER_S)
    try:
        repo = hub.add_repo(REPO_ID)
        repo.commit({f"model-{i + 1:05d}-of-{FILE_COUNT:05d}.safetensors": weight_bytes(i, FILE_SIZE)
                     for i in range(FILE_COUNT)})
        expected = {path: blob.sha256 for path, blob in repo.resolve("main").files.items()}
        rt_env.setenv("HF_ENDPOINT", hub.url)
        yield Weights(hub, expected)
    finally:
        hub.stop()


# --- containers ---------------------------------------------------------------------------------
@dataclass
class Resources:
    """Tags, containers and volumes a module created; removed when it ends."""

    client: Any
    tags: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def close(self) -> None:
        import docker

        for name in self.containers:
            with contextlib.suppress(docker.errors.APIError):
                self.client.api.remove_container(name, force=True, v=True)
        for volume in self.volumes:
            with contextlib.suppress(docker.errors.APIError):
                self.client.api.remove_volume(volume, force=True)
        for ref in reversed(self.tags):
            # By tag, without force: an identical image of another user keeps its own names.
            with contextlib.suppress(docker.errors.APIError):
                self.client.api.remove_image(ref)


@pytest.fixture(scope="module")
def resources(docker_client: Any) -> Iterator[Resources]:
    res = Resources(docker_client)
    yield res
    res.close()


def http_request(port: int, method: str, path: str, body: Any = None,
                 timeout: float = 30.0) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def predict(port: int, body: Any, timeout: float = 60.0) -> Any:
    status, raw = http_request(port, "POST", "/v1/models/model:predict", body, timeout)
    assert status == 200, f"predict -> {status}: {raw[:2000]!r}"
    return json.loads(raw)


def timeline_doc(port: int) -> dict:
    """The runtime's whole timeline document, from the JSON comment line of /metrics."""
    status, body = http_request(port, "GET", "/metrics", timeout=10)
    assert status == 200, status
    for line in body.decode("utf-8", "replace").splitlines():
        match = re.match(r"^# pack_startup_timeline (\{.*\})$", line)
        if match:
            return json.loads(match.group(1))
    raise AssertionError("no pack_startup_timeline line in /metrics:\n" + body.decode()[:2000])


@dataclass
class Launch:
    container: DockerContainer
    port: int
    volume: str
    # (seconds since `docker run` was called, readiness status, liveness status); 0 = no answer
    polls: list[tuple[float, int, int]]
    ready_after: float | None  # seconds from `docker run` to the first readiness 200
    exit_code: int | None  # set when the container ended instead of becoming ready

    def logs(self) -> str:
        return self.container.logs()


def _status(port: int, path: str) -> int:
    try:
        return http_request(port, "GET", path, timeout=2.0)[0]
    except OSError:
        return 0


def launch(image: str, res: Resources, *, volume: str, env: dict[str, str] | None = None,
           timeout: float = 120.0, interval: float = 0.02) -> Launch:
    """Start `image` as runner.start does (host network, HF_ENDPOINT and friends, the weight
    cache volume at RUNTIME_CACHE_DIR), polling readiness and liveness every `interval` until
    readiness answers 200 or the container exits."""
    port = free_port()
    name = unique("pack-e2e-rt")
    res.containers.append(name)
    if volume not in res.volumes:
        res.volumes.append(volume)
    started = time.monotonic()
    container = open_engine().run(RunRequest(image, port=port, env={**source_endpoints(), **(env or {})},
                                             volumes={volume: RUNTIME_CACHE_DIR}, name=name))
    polls: list[tuple[float, int, int]] = []
    while True:
        ready = _status(port, READY_PATH)
        live = _status(port, "/")
        elapsed = time.monotonic() - started
        polls.append((elapsed, ready, live))
        if ready == 200:
            return Launch(container, port, volume, polls, elapsed, None)
        if container.status() not in ("running", "created", "restarting"):
            return Launch(container, port, volume, polls, None, container.exit_code())
        if elapsed > timeout:
            raise AssertionError(f"{name} neither ready nor exited after {timeout} s:\n"
                                 + container.logs(tail=60))
        time.sleep(interval)


def wait_exit(container: DockerContainer, timeout: float = 60.0) -> int | None:
    deadline = time.monotonic() + timeout
    while container.status() in ("running", "created", "restarting"):
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)
    return container.exit_code()


def tl_stage(doc: dict, stage: str) -> float:
    stages = doc["stages"]
    assert stage in stages, f"no {stage} in the timeline: {stages}"
    return float(stages[stage])
