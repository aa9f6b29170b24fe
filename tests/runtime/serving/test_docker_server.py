"""docker_server mode: prefetch first, then start_command behind Truss's routes; readiness gated
on the prefetch; the container's exit status is the server's; SIGTERM is forwarded; a Truss-style
`truss-transfer-cli && server` start_command still works."""

from __future__ import annotations

import http.client
import json
import signal
import sys

import pytest

from tests.fixtures.range_server import RangeServer
from tests.runtime.harness import free_port, make_app
from tests.runtime.prefetch.test_prefetch import MiB, blob, manifest_for

SERVER = """
    import argparse, json, os, signal, sys, threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--weights")
    args = parser.parse_args()
    weights_at_start = os.path.exists(args.weights)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(7))


    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, status, doc):
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/health/live":
                return self.send(200, {"live": True})
            if self.path == "/health/ready":
                return self.send(200, {"ready": True, "weights_at_start": weights_at_start})
            if self.path == "/stream":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in (b"one;", b"two;"):
                    self.wfile.write(b"%x\\r\\n%s\\r\\n" % (len(part), part))
                self.wfile.write(b"0\\r\\n\\r\\n")
                return
            self.send(200, {"method": "GET", "path": self.path})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/exit":
                self.send(200, {"bye": True})
                threading.Timer(0.2, lambda: os._exit(json.loads(body)["code"])).start()
                return
            self.send(200, {"method": "POST", "path": self.path, "body": body.decode(),
                            "env": os.environ.get("MY_VAR")})


    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
"""


def docker_app(tmp_path, server: RangeServer, start_command: str | None = None, weights: bytes | None = None):
    port = free_port()
    manifest = manifest_for(server, {"llm/w.bin": weights}) if weights is not None else None
    weights_path = tmp_path / "app" / "model_cache" / "llm" / "w.bin"
    command = start_command or f"{sys.executable} data/server.py --port {port} --weights {weights_path}"
    config = {"docker_server": {"start_command": command, "server_port": port,
                                "predict_endpoint": "/predict", "readiness_endpoint": "/health/ready",
                                "liveness_endpoint": "/health/live"},
              "environment_variables": {"MY_VAR": "from-config"}}
    return make_app(tmp_path, None, config=config, files={"data/server.py": SERVER}, manifest=manifest), port


@pytest.fixture
def server():
    with RangeServer() as srv:
        yield srv


def test_routes_are_mapped_and_readiness_waits_for_the_prefetch(tmp_path, runtimes, server):
    server.faults.rate = 2 * MiB
    app, _ = docker_app(tmp_path, server, weights=blob(2 * MiB, 9))
    rt = runtimes(app)
    rt.wait_listening()
    # Weights still downloading: alive, not ready, the server not started yet.
    assert rt.request("GET", "/")[2] == b"true"
    assert rt.request("GET", "/v1/models/model")[0] == 503
    rt.wait_ready(30)
    assert rt.json("GET", "/v1/models/model") == (200, {"ready": True, "weights_at_start": True})
    assert rt.json("GET", "/") == (200, {"live": True})
    status, body = rt.json("POST", "/v1/models/model:predict?x=1", {"a": 1})
    assert (status, body) == (200, {"method": "POST", "path": "/predict?x=1", "body": '{"a": 1}',
                                    "env": "from-config"})
    for path in ("/v1/models/model:predict_binary", "/metrics", "/v1/models/model/loaded", "/any/path?q=2"):
        assert rt.json("GET", path) == (200, {"method": "GET", "path": path}), path
    conn = http.client.HTTPConnection("127.0.0.1", rt.port, timeout=10)
    conn.request("GET", "/stream")
    assert conn.getresponse().read() == b"one;two;"
    conn.close()
    stages = rt.timeline()["stages"]
    assert stages["prefetch_end"] <= stages["server_start"] <= stages["ready"]
    # The container ends when the server ends, with its status.
    assert rt.json("POST", "/exit", {"code": 3}) == (200, {"bye": True})
    assert rt.wait_exit(20) == 3


def test_sigterm_is_forwarded_and_the_server_status_is_the_exit_status(tmp_path, runtimes, server):
    app, _ = docker_app(tmp_path, server)
    rt = runtimes(app)
    rt.wait_ready(30)
    assert rt.stop(signal.SIGTERM) == 7  # the server's SIGTERM handler exits 7


def test_a_truss_style_truss_transfer_cli_start_command_still_works(tmp_path, runtimes, server):
    port = free_port()
    weights = tmp_path / "app" / "model_cache" / "llm" / "w.bin"
    # The wrapper the renderer installs as /usr/local/bin/truss-transfer-cli.
    script = tmp_path / "truss-transfer-cli"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m packager.runtime.prefetch.truss_transfer_cli "$@"\n')
    script.chmod(0o755)
    command = (f"{script} && "
               f"{sys.executable} data/server.py --port {port} --weights {weights}")
    app, _ = docker_app(tmp_path, server, weights=blob(MiB, 10))
    app.config["docker_server"].update(start_command=f'sh -c "{command}"', server_port=port)
    (app.root / ".pack" / "config.json").write_text(json.dumps(app.config))
    rt = runtimes(app)
    rt.wait_ready(30)
    assert rt.json("GET", "/v1/models/model") == (200, {"ready": True, "weights_at_start": True})
    assert "weights already in place" in rt.logs()


def test_a_failed_prefetch_does_not_start_the_server(tmp_path, runtimes, server):
    app, _ = docker_app(tmp_path, server, weights=b"w" * 10)
    server.files.clear()
    rt = runtimes(app)
    assert rt.wait_exit(30) == 1
    assert "not starting the server" in rt.logs()


def test_a_server_that_dies_ends_the_container_with_its_status(tmp_path, runtimes, server):
    app, _ = docker_app(tmp_path, server, start_command="echo starting; exit 5")
    rt = runtimes(app)
    assert rt.wait_exit(30) == 5
