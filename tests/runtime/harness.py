"""The in-image runtime as a real subprocess against a temporary app dir, on random ports.

    app = make_app(tmp_path, MODEL, config={...}, secrets={...})
    with Runtime(app) as rt:
        rt.wait_ready()
        status, headers, body = rt.request("POST", "/v1/models/model:predict", {"x": 1})

The reload control of `pack watch` images (packager/runtime/dev):

    control = DevControl()
    with Runtime(app, **control.env()) as rt:
        status, doc = control.patch({"model/model.py": NEW_CODE})

`runtime_copy(dest, dev=False)` lays out the runtime as an image carries it (without dev, as
`pack build` makes it); pass it as Runtime(app, code_root=...).
"""

from __future__ import annotations

import base64
import http.client
import contextlib
import json
import os
import resource
import secrets as token_source
import shutil
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
from tests.fixtures.processes import descendants

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


def runtime_importorskip(module: str) -> None:
    """Skip the test unless the runtime's interpreter (RUNTIME_PYTHON, maybe not this one) can
    import `module`: a model that imports it would not load otherwise."""
    import pytest

    found = subprocess.run([RUNTIME_PYTHON, "-c", f"import {module}"], capture_output=True, check=False)
    if found.returncode != 0:
        pytest.skip(f"{module} is not installed for {RUNTIME_PYTHON}")


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


def runtime_copy(dest: Path, dev: bool = False) -> Path:
    """The runtime as an image carries it (packager/__init__.py, constants.py, runtime/), with
    packager/runtime/dev only when `dev`; returns the directory to run it from."""
    source = Path(REPO_ROOT) / "packager"
    target = dest / "packager"
    target.mkdir(parents=True)
    for name in ("__init__.py", "constants.py"):
        shutil.copyfile(source / name, target / name)
    skip = shutil.ignore_patterns("__pycache__", *(() if dev else ("dev",)))
    shutil.copytree(source / "runtime", target / "runtime", ignore=skip)
    return dest


def runtime_env(app: App, port: int, code_root: str = REPO_ROOT, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRUSS_SECRET_", "PACK_"))}
    env.update({
        "PYTHONPATH": code_root + os.pathsep + os.environ.get("PYTHONPATH", ""),
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
    def __init__(self, app: App, port: int | None = None, code_root: Path | None = None,
                 open_files: int | None = None, **env: str):
        """`open_files`: the soft RLIMIT_NOFILE the runtime starts with (None: this process's)."""
        self.app = app
        self.open_files = open_files
        self.port = port or free_port()
        self.code_root = str(code_root or REPO_ROOT)
        self.env = runtime_env(app, self.port, self.code_root, **env)
        self.log_path = app.root.parent / f"runtime-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    # --- process -------------------------------------------------------------------------------
    def start(self) -> Runtime:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in kill()
        self.started = time.monotonic()
        self.proc = subprocess.Popen([RUNTIME_PYTHON, "-m", "packager.runtime.entrypoint"],
                                     env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=self.code_root,
                                     preexec_fn=None if self.open_files is None else self._limit_open_files)
        return self

    def _limit_open_files(self) -> None:  # in the child, before exec
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, hard))

    def __enter__(self) -> Runtime:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()

    def kill(self) -> None:
        """SIGKILL the runtime and everything it started: in a container the end of PID 1 takes
        them all, here a docker_server's user server (its own session) would outlive it."""
        if self.proc is not None and self.proc.poll() is None:
            children = descendants(self.proc.pid)
            self.proc.kill()
            self.proc.wait(10)
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
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

    def log_records(self) -> list[dict]:
        """The server's log records: its JSON lines that carry a levelname (as Truss writes them;
        print() output and the start-up timeline line are left out)."""
        records = []
        for line in self.logs().splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and "levelname" in doc:
                records.append(doc)
        return records

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

    def listening_ports(self) -> set[int]:
        """The TCP ports the runtime process itself listens on (not its children)."""
        assert self.proc is not None
        return {port for port, _ in listening_sockets(self.proc.pid)}


def listening_sockets(pid: int) -> set[tuple[int, str]]:
    """(port, local address) of every TCP socket process `pid` listens on, from /proc."""
    fd_dir = Path(f"/proc/{pid}/fd")
    inodes = set()
    for fd in fd_dir.iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                found.add((int(port, 16), _address(address)))
    return found


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:  # /proc writes IPv4 in host (little-endian) order
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


@dataclass
class DevControl:
    """A client of the reload control: the variables `pack watch` sets, and its requests."""

    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: token_source.token_hex(16))

    def env(self) -> dict[str, str]:
        return {constants.PACK_DEV_CONTROL_PORT: str(self.port), constants.PACK_DEV_CONTROL_TOKEN: self.token}

    def request(self, method: str, path: str, body: Any = None, token: str | None = None,
                headers: dict[str, str] | None = None, timeout: float = 60.0) -> tuple[int, Any]:
        """`token`: None sends the right one, "" sends no Authorization header."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        sent = dict(headers or {})
        token = self.token if token is None else token
        if token:
            sent["Authorization"] = f"Bearer {token}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=sent)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
        finally:
            conn.close()

    def patch(self, files: dict[str, str | bytes] | None = None, packages: dict[str, str | bytes] | None = None,
              deleted: list[dict[str, str]] | None = None, **kw: Any) -> tuple[int, Any]:
        """Write `files` (root app) and `packages` (root packages) and reload; str content is
        dedented like make_app's."""
        entries = [_file_entry(root, path, content)
                   for root, given in (("app", files), ("packages", packages))
                   for path, content in (given or {}).items()]
        body = {"files": entries, "deleted": deleted or [], "changed": [e["path"] for e in entries]}
        return self.request("POST", "/v1/dev/patch", body, **kw)

    def status(self) -> dict[str, Any]:
        status, doc = self.request("GET", "/v1/dev/status")
        assert status == 200, (status, doc)
        return doc


def _file_entry(root: str, path: str, content: str | bytes) -> dict[str, Any]:
    data = content if isinstance(content, bytes) else textwrap.dedent(content).encode()
    return {"root": root, "path": path, "content_b64": base64.b64encode(data).decode(), "mode": 0o644}
