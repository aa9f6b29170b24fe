"""Truss's runtime contract through a built image started the way a user starts it: `pack run
--detach` with --secret (read on this host) and --secrets-dir, plus TRUSS_SECRET_* given to the
container with -e. Then, call by call: liveness, readiness, loaded, predict (JSON in and out,
kwargs passed by the constructor's signature), a streaming generator that arrives chunk by chunk,
and secrets resolved by declared name, /secrets/<name> first, then TRUSS_SECRET_<name>.

The model is conftest.MODEL_PY (the same as test_coldstart's, under another model name so the
weight-cache volume is its own).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_runtime.conftest import (
    BASE_IMAGE,
    Resources,
    Weights,
    free_port,
    http_request,
    predict,
    unique,
    write_truss,
)

pytestmark = pytest.mark.docker

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST_FLAG_VALUE = "flag-value-read-on-the-host"
FILES = {"file_only": "from-file\n", "both": "both-from-file"}  # --secrets-dir contents
CONTAINER_ENV = {"TRUSS_SECRET_env_only": "env-only-value", "TRUSS_SECRET_both": "both-from-env"}


@dataclass
class Served:
    port: int
    container: str
    output: str  # what `pack run` printed


@pytest.fixture(scope="module")
def served(weights: Weights, resources: Resources, docker_client: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    model_name = f"e2e-rt-contract-{uuid.uuid4().hex[:8]}"
    work = tmp_path_factory.mktemp("contract")
    truss = write_truss(work / "truss", model_name, weights.expected)
    secrets_dir = work / "secrets"
    secrets_dir.mkdir()
    for name, value in FILES.items():
        (secrets_dir / name).write_text(value)
    port, name = free_port(), unique("pack-e2e-rt")
    resources.containers.append(name)
    resources.volumes.append(f"pack-weights-{model_name}")
    argv = [sys.executable, "-m", "packager.cli.main", "run", str(truss), "--base-image", BASE_IMAGE,
            "--port", str(port), "--name", name, "--detach", "--progress", "quiet", "--timeout", "120",
            "--secrets-dir", str(secrets_dir), "--secret", "flag_secret"]
    for key, value in CONTAINER_ENV.items():
        argv += ["-e", f"{key}={value}"]
    # The host-side value of --secret flag_secret; HF_ENDPOINT (the stand-in) comes from rt_env.
    env = {**os.environ, "TRUSS_SECRET_flag_secret": HOST_FLAG_VALUE}
    try:
        proc = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"pack run -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        yield Served(port, name, proc.stdout + proc.stderr)
    finally:
        for image in docker_client.images.list(name=model_name):
            resources.tags.extend(image.tags)


def test_pack_run_reports_ready_and_the_startup_timeline(served: Served) -> None:
    assert "is ready at" in served.output, served.output
    line = next((ln for ln in served.output.splitlines() if ln.startswith("startup ")), None)
    assert line is not None, served.output
    timeline = json.loads(line.removeprefix("startup "))
    assert {"prefetch_start", "import_end", "load_end", "ready"} <= set(timeline["stages"]), timeline


def test_liveness_readiness_and_loaded(served: Served) -> None:
    assert http_request(served.port, "GET", "/")[0] == 200
    assert http_request(served.port, "GET", "/v1/models/model")[0] == 200
    status, body = http_request(served.port, "GET", "/v1/models/model/loaded")
    assert status == 200, body


def test_predict_json_in_and_out(served: Served) -> None:
    answer = predict(served.port, {"numbers": [1, 2, 3.5], "text": "héllo"})
    assert answer == {"echo": {"numbers": [1, 2, 3.5], "text": "héllo"}, "sum": 6.5}
    # Model.__init__ names config, data_dir, secrets, lazy_data_resolver (no **kwargs): it was
    # constructed, and its weights are all in place.
    report = predict(served.port, {"report": True})
    assert set(report["in_place_now"].values()) == {"ok"}, report


def test_bad_json_is_a_client_error(served: Served) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        conn.request("POST", "/v1/models/model:predict", body=b"{not json",
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert 400 <= response.status < 500, (response.status, body)


def test_streaming_generator_arrives_chunk_by_chunk(served: Served) -> None:
    delay, n = 0.4, 4
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        started = time.monotonic()
        conn.request("POST", "/v1/models/model:predict", body=json.dumps({"stream": n, "delay": delay}),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200
        arrivals, data = [], b""
        while chunk := response.read1(65536):
            arrivals.append(time.monotonic() - started)
            data += chunk
    finally:
        conn.close()
    assert data.decode() == "".join(f"chunk-{i};" for i in range(n))
    # The first chunk comes before the generator finished (n-1 delays later).
    assert arrivals[0] < (n - 1) * delay - delay, arrivals
    assert arrivals[-1] >= (n - 1) * delay * 0.9, arrivals


def test_secrets_resolve_file_first_then_env(served: Served) -> None:
    names = ["file_only", "env_only", "both", "flag_secret", "missing"]
    answer = predict(served.port, {"secrets": names})
    assert answer["values"] == {
        "file_only": "from-file\n",  # verbatim, trailing newline kept
        "env_only": "env-only-value",  # no file: TRUSS_SECRET_env_only
        "both": "both-from-file",  # the file wins over TRUSS_SECRET_both
        "flag_secret": HOST_FLAG_VALUE,  # --secret: read on the host, mounted as a file
        "missing": None,  # declared, no value anywhere
    }, answer
    # --secret became a file under /secrets, never an environment variable of the container.
    assert answer["files"] == ["both", "file_only", "flag_secret"], answer
    assert answer["env"] == ["TRUSS_SECRET_both", "TRUSS_SECRET_env_only"], answer
