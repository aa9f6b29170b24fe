"""Disconnect-aware queueing in a built image: with predict_concurrency 1, a request queued behind
a running predict whose client disconnects (through Docker's port forwarding) is skipped with
Truss's log line and never reaches predict; a queued request whose client waits is served."""

from __future__ import annotations

import http.client
import json
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from packager import runner
from packager.builder import BuildResult
from tests.e2e.conftest import Resources, build, exec_in, start
from tests.runtime.serving.test_disconnect import QUEUE_MODEL  # its marks go to MARKS=/tmp here

pytestmark = pytest.mark.docker

PREDICT = "/v1/models/model:predict"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, e2e_env: pytest.MonkeyPatch,
          resources: Resources) -> Iterator[BuildResult]:
    root = tmp_path_factory.mktemp("disconnect") / "truss"
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text("model_name: e2e-disconnect\npython_version: py311\nrequirements: []\n"
                                      "environment_variables:\n  MARKS: /tmp\n"
                                      "runtime:\n  predict_concurrency: 1\n")
    (root / "model" / "model.py").write_text(textwrap.dedent(QUEUE_MODEL))
    yield build(Path(root), resources.tag("disconnect"))


def _send(host: str, port: int, body: dict) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=60)
    data = json.dumps(body).encode()
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (PREDICT.encode(), len(data), data))
    return sock


def _wait_for_file(client: Any, container: str, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while client.containers.get(container).exec_run(["test", "-e", path]).exit_code != 0:
        assert time.monotonic() < deadline, f"{path} never appeared in {container}"
        time.sleep(0.1)


def test_a_disconnected_queued_request_never_reaches_predict(built: BuildResult, resources: Resources,
                                                             docker_client: Any) -> None:
    running = start(built, built.plan, resources)
    try:
        url = urlsplit(running.url)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        name = running.container.name
        holder: list[Any] = []
        thread = threading.Thread(target=lambda: holder.append(
            runner.predict(running.url, {"tag": "holder", "hold": True}, timeout=120)))
        thread.start()
        _wait_for_file(docker_client, name, "/tmp/holding")
        gone = _send(host, port, {"tag": "gone"})
        stays = _send(host, port, {"tag": "stays"})
        time.sleep(0.5)  # both read and waiting for the permit
        gone.close()
        time.sleep(0.5)  # the close has come through the port forwarding
        exec_in(docker_client, name, ["touch", "/tmp/gate"])
        thread.join(120)
        assert holder == [{"ran": "holder"}]
        answer = http.client.HTTPResponse(stays)
        answer.begin()
        assert (answer.status, json.loads(answer.read())) == (200, {"ran": "stays"})
        stays.close()
        assert runner.predict(running.url, {"tag": "calls"}, timeout=60) == {"holder": 1, "stays": 1}
        assert "Client disconnected, skipping `predict`." in running.container.logs(tail=200)
    finally:
        running.container.remove()
