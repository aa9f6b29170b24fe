"""The in-image runtime as a real subprocess against a temporary app dir, on random ports.

    app = make_app(tmp_path, MODEL, config={...}, secrets={...})
    with Runtime(app) as rt:
        rt.wait_ready()
        status, headers, body = rt.request("POST", "/v1/models/model:predict", {"x": 1})
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager import constants
from packager.runtime.manifest import Manifest

REPO_ROOT = str(Path(__file__).resolve().parents[2])
# The interpreter the runtime runs on; set PACK_TEST_PYTHON to check another version (images may
# carry anything from 3.8 up). The tests themselves keep running on the current interpreter.
RUNTIME_PYTHON = os.environ.get("PACK_TEST_PYTHON") or sys.executable
DEFAULT_CONFIG = {
    "model_name": "test", "model_module_dir": "model", "model_class_filename": "model.py",
    "model_class_name": "Model", "secrets": {}, "environment_variables": {},
    "runtime": {"predict_concurrency": 1, "streaming_read_timeout": 60},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class App:
    root: Path
    state: Path
    secrets: Path
    dynamic: Path
    config: dict = field(default_factory=dict)

    @property
    def manifest_path(self) -> Path:
        return self.root / ".pack" / "weights-manifest.json"

    @property
    def model_cache(self) -> Path:
        return self.root / "model_cache"


def make_app(base: Path, model_code: str | None = None, config: dict | None = None,
             files: dict[str, str | bytes] | None = None, secrets: dict[str, str] | None = None,
             manifest: Manifest | None = None, yaml_only: bool = False) -> App:
    """Lay out an app dir the way the renderer lays out /app."""
    app = App(base / "app", base / "state", base / "secrets", base / "dynamic")
    for d in (app.root / ".pack", app.root / "data", app.state, app.secrets, app.dynamic):
        d.mkdir(parents=True, exist_ok=True)
    app.config = {**DEFAULT_CONFIG, **(config or {})}
    if model_code is not None:
        (app.root / "model").mkdir(exist_ok=True)
        (app.root / "model" / "model.py").write_text(textwrap.dedent(model_code))
    # JSON is valid YAML, so config.yaml can carry the same document.
    (app.root / "config.yaml").write_text(json.dumps(app.config, indent=2))
    if not yaml_only:
        (app.root / ".pack" / "config.json").write_text(json.dumps(app.config))
    for rel, content in (files or {}).items():
        path = app.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content))
    for name, value in (secrets or {}).items():
        (app.secrets / name).write_text(value)
    if manifest is not None:
        app.manifest_path.write_text(manifest.to_json())
    return app


def runtime_env(app: App, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRUSS_SECRET_", "PACK_"))}
    env.update({
        "PYTHONPATH": REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        constants.PACK_APP_DIR: str(app.root),
        constants.PACK_STATE_DIR: str(app.state),
        constants.PACK_SECRETS_DIR: str(app.secrets),
        constants.PACK_DYNAMIC_CONFIG_DIR: str(app.dynamic),
        constants.PACK_PACKAGES_DIR: str(app.root.parent / "packages"),
        constants.INFERENCE_SERVER_PORT: str(port),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


class Runtime:
    def __init__(self, app: App, port: int | None = None, **env: str):
        self.app = app
        self.port = port or free_port()
        self.env = runtime_env(app, self.port, **env)
        self.log_path = app.root.parent / f"runtime-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    # --- process -------------------------------------------------------------------------------
    def start(self) -> Runtime:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in kill()
        self.started = time.monotonic()
        self.proc = subprocess.Popen([RUNTIME_PYTHON, "-m", "packager.runtime.entrypoint"],
                                     env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=REPO_ROOT)
        return self

    def __enter__(self) -> Runtime:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if hasattr(self, "_log"):
            self._log.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def timeline(self, timeout: float = 5.0) -> dict:
        """The structured start-up line (written at ready, or at a failed load)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.logs().splitlines():
                if '"pack.startup_timeline"' in line:
                    return json.loads(line[line.index("{"):])
            if time.monotonic() > deadline:
                raise AssertionError("no timeline line in the log:\n" + self.logs())
            time.sleep(0.05)

    # --- HTTP ----------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None, **kw) -> tuple[int, Any]:
        status, _, raw = self.request(method, path, body, **kw)
        return status, json.loads(raw) if raw else None

    def predict(self, body: Any, **kw) -> tuple[int, Any]:
        return self.json("POST", "/v1/models/model:predict", body, **kw)

    def wait_until(self, path: str, status: int = 200, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"runtime exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if self.request("GET", path, timeout=5)[0] == status:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{path} never answered {status} within {timeout}s:\n{self.logs()}")

    def wait_listening(self, timeout: float = 30.0) -> float:
        return self.wait_until("/", 200, timeout)

    def wait_ready(self, timeout: float = 30.0) -> float:
        return self.wait_until("/v1/models/model", 200, timeout)
