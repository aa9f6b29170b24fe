"""`pack watch` with a real engine, run as a user runs it (`pack watch --json` in its own process):
edits reload the model in place with no failed request, a syntax error keeps the old model
answering until the fix, a requirements edit rebuilds and restarts, SIGTERM leaves nothing."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from packager import constants
from tests.e2e.conftest import REPO_ROOT, Resources
from tests.fixtures.docker_env import BASE_IMAGE, free_port, stop_pack, unique

pytestmark = pytest.mark.docker

MODEL = '''\
VERSION = {version!r}


class Model:
    def __init__(self, **kwargs):
        self._loaded = False

    def load(self):
        self._loaded = True

    def predict(self, model_input):
        return {{"version": VERSION, "echo": model_input, "loaded": self._loaded}}
'''


@dataclass
class Watch:
    truss: Path
    port: int
    proc: subprocess.Popen[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    _queue: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self._queue.put(json.loads(line))
            except ValueError:
                continue
        self._queue.put(None)

    def next(self, *kinds: str, timeout: float = 300.0) -> dict[str, Any]:
        """The next event of one of `kinds` (log lines and other kinds are kept, not returned)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {kinds} event after {timeout:.0f} s; so far: {self.summary()}")
            if event is None:
                pytest.fail(f"pack watch ended (exit {self.proc.wait()}) before a {kinds} event: {self.summary()}")
            self.events.append(event)
            if event["event"] in kinds:
                return event

    def summary(self) -> str:
        return json.dumps([e for e in self.events if e["event"] != "logline"], indent=1)[-4000:]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def predict(self, body: Any = None) -> tuple[int, Any]:
        request = urllib.request.Request(self.url + "/v1/models/model:predict",
                                         data=json.dumps(body or {"x": 1}).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(exc)


def write_model(truss: Path, version: str) -> None:
    # Written in place, as most editors save.
    (truss / "model" / "model.py").write_text(MODEL.format(version=version))


def container_id(client: Any, name: str) -> str:
    return str(client.containers.get(name).id)


@pytest.fixture
def watch(e2e_env: Any, base_image: str, resources: Resources, tmp_path: Path) -> Iterator[Watch]:
    model = unique("pack-e2e-watch")
    truss = tmp_path / "truss"
    (truss / "model").mkdir(parents=True)
    write_model(truss, "v0")
    (truss / "config.yaml").write_text(f"model_name: {model}\npython_version: py311\n"
                                       "requirements_file: requirements.txt\n")
    (truss / "requirements.txt").write_text("")
    resources.containers.append(f"pack-{model}")
    resources.volumes.append(f"pack-weights-{model}")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "packager.cli.main", "watch", str(truss), "--json",
                             "--port", str(port), "--base-image", BASE_IMAGE, "--progress", "quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    session = Watch(truss, port, proc)
    try:
        yield session
    finally:
        stop_pack(proc)
        _forget_images(resources, truss)


def _forget_images(resources: Resources, truss: Path) -> None:
    key = (truss / "config.yaml").resolve()
    for image in resources.client.api.images(filters={"label": [f"{constants.LABEL_TRUSS}={key}"]}):
        resources.tags.extend(t for t in image.get("RepoTags") or () if t not in resources.tags)


def test_five_reloads_under_a_looping_client_fail_no_request(watch: Watch, resources: Resources) -> None:
    serving = watch.next("serving")
    first_container = container_id(resources.client, serving["container"])
    answers: list[tuple[int, Any]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            answers.append(watch.predict())

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        for n in range(1, 6):
            write_model(watch.truss, f"v{n}")
            reloaded = watch.next("reloaded", "reloadfailed", "building")
            assert reloaded["event"] == "reloaded", watch.summary()
            assert reloaded["changed"] == ["model/model.py"] and reloaded["generation"] == n + 1
            # The client's next answers come from the new code.
            deadline = time.monotonic() + 30
            while not any(a[1] == {"version": f"v{n}", "echo": {"x": 1}, "loaded": True} for a in answers[-5:]):
                assert time.monotonic() < deadline, answers[-5:]
                time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=60)
    failed = [a for a in answers if a[0] != 200]
    assert failed == [] and len(answers) > 50, (len(answers), failed[:5])
    versions = [a[1]["version"] for a in answers]
    assert versions == sorted(versions), "an answer came from older code after newer code had answered"
    assert set(versions) >= {f"v{n}" for n in range(1, 6)}
    # The same container throughout: no restart, nothing rebuilt.
    assert container_id(resources.client, serving["container"]) == first_container
    assert not [e for e in watch.events if e["event"] == "building" and e["reason"]]


def test_a_syntax_error_keeps_the_old_model_and_the_fix_recovers(watch: Watch) -> None:
    watch.next("serving")
    model = watch.truss / "model" / "model.py"
    good = MODEL.format(version="good")
    model.write_text(good)
    assert watch.next("reloaded", "reloadfailed")["event"] == "reloaded"
    lines = good.splitlines()
    broken_line = lines.index("    def predict(self, model_input):") + 1
    lines[broken_line - 1] = "    def predict(self, model_input:"
    model.write_text("\n".join(lines) + "\n")
    failed = watch.next("reloaded", "reloadfailed")
    assert failed["event"] == "reloadfailed", watch.summary()
    assert failed["error"]["type"] == "SyntaxError"
    assert failed["where"] == f"model/model.py:{broken_line}", failed
    assert failed["generation"] == 2
    assert watch.predict() == (200, {"version": "good", "echo": {"x": 1}, "loaded": True})
    write_model(watch.truss, "fixed")
    recovered = watch.next("reloaded", "reloadfailed")
    assert recovered["event"] == "reloaded" and recovered["generation"] == 3
    assert watch.predict() == (200, {"version": "fixed", "echo": {"x": 1}, "loaded": True})


def test_a_requirements_edit_rebuilds_and_restarts(watch: Watch, resources: Resources) -> None:
    serving = watch.next("serving")
    before = container_id(resources.client, serving["container"])
    # Already in every Model-class image (pack's server layer): pip installs it without a network.
    (watch.truss / "requirements.txt").write_text("msgpack\n")
    building = watch.next("building", "reloaded")
    assert building == {"event": "building", "reason": "requirements.txt changed: rebuilding"}
    restarted = watch.next("serving", "notapplied")
    assert restarted["event"] == "serving", watch.summary()
    assert container_id(resources.client, restarted["container"]) != before
    assert watch.predict()[0] == 200
    # The rebuilt container has the reload control too.
    write_model(watch.truss, "after-rebuild")
    assert watch.next("reloaded", "reloadfailed")["event"] == "reloaded"
    assert watch.predict()[1]["version"] == "after-rebuild"


def test_sigterm_stops_and_removes_the_container(watch: Watch, resources: Resources) -> None:
    import docker

    serving = watch.next("serving")
    watch.proc.send_signal(signal.SIGTERM)
    assert watch.proc.wait(timeout=60) == 130
    with pytest.raises(docker.errors.NotFound):
        resources.client.containers.get(serving["container"])
    assert watch.predict()[0] == 0  # nothing listens any more
