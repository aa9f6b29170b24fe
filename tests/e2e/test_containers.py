"""What pack leaves running or stored for a truss, with a real engine: `pack run` in the foreground
streams the server's output and a SIGTERM to pack stops and removes the container; `pack logs`
shows the server's start; `pack stop` stops it; `pack cleanup` removes exactly what its --dry-run
lists and nothing of another truss; an image from `pack build` has no reload control, the dev
image of the same truss (one more layer) answers it."""

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from packager import api, constants
from packager.builder import build_image
from packager.engine import BuildRequest, open_engine
from packager.engine.inventory import precise_time
from packager.plan.model import BuildOptions
from packager.render.context import DEV_RUNTIME_IMAGE_PATH
from tests.e2e.conftest import REPO_ROOT, Resources, pack_cli, start
from tests.fixtures.docker_env import BASE_IMAGE, free_port, unique, write_context

pytestmark = pytest.mark.docker


def model_code(marker: str) -> str:
    return (f"class Model:\n    def load(self):\n        print('loading {marker}', flush=True)\n\n"
            "    def predict(self, model_input):\n        return {'echo': model_input}\n")


@dataclass
class Truss:
    path: Path
    model: str  # model_name, unique: the default container, tag and volume names derive from it
    marker: str  # what its load() prints

    @property
    def volume(self) -> str:
        return f"pack-weights-{self.model}"

    @property
    def container(self) -> str:
        return f"pack-{self.model}"


def make_truss(root: Path, resources: Resources) -> Truss:
    model, marker = unique("pack-e2e-ct"), unique("marker")
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.py").write_text(model_code(marker))
    (root / "config.yaml").write_text(f"model_name: {model}\npython_version: py311\n")
    resources.containers.append(f"pack-{model}")
    resources.volumes.append(f"pack-weights-{model}")
    return Truss(root, model, marker)


def forget_images(truss: Truss, resources: Resources, client: Any) -> list[str]:
    """The truss's tags (they are removed with the module), newest first."""
    key = (truss.path / "config.yaml").resolve()
    images = client.api.images(filters={"label": [f"{constants.LABEL_TRUSS}={key}"]})
    # To the nanosecond: the list's whole seconds tie for two builds made in the same second.
    created = {i["Id"]: precise_time(client.api.inspect_image(i["Id"])["Created"]) for i in images}
    tags = [t for i in sorted(images, key=lambda i: created[i["Id"]], reverse=True) for t in i.get("RepoTags") or ()]
    resources.tags.extend(t for t in tags if t not in resources.tags)
    return tags


def container_exists(client: Any, name: str) -> bool:
    import docker

    try:
        client.containers.get(name)
    except docker.errors.NotFound:
        return False
    return True


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def echo(e2e_env: Any, base_image: str, resources: Resources, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Truss]:
    truss = make_truss(tmp_path_factory.mktemp("echo") / "t", resources)
    yield truss
    forget_images(truss, resources, resources.client)


class Lines:
    """A process's output lines, read as they come (a thread), waited for by content."""

    def __init__(self, proc: subprocess.Popen[str]):
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=lambda: [self._queue.put(line) for line in stream] + [self._queue.put(None)],
                         daemon=True).start()

    def until(self, text: str, timeout: float = 300.0) -> None:
        """Read until a line contains `text`; fail (with what came) if the output ends first."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.seen):
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no line with {text!r} after {timeout:.0f} s:\n" + "".join(self.seen))
            if line is None:
                pytest.fail(f"the output ended without {text!r}:\n" + "".join(self.seen))
            self.seen.append(line)

    def rest(self) -> str:
        while (line := self._queue.get(timeout=60)) is not None:
            self.seen.append(line)
        return "".join(self.seen)


def test_a_foreground_run_streams_the_server_output_and_sigterm_stops_and_removes_it(
        echo: Truss, docker_client: Any) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "packager.cli.main", "run", str(echo.path), "--base-image", BASE_IMAGE,
         "--port", str(port), "--progress", "plain"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT)
    try:
        lines = Lines(proc)
        lines.until(f"loading {echo.marker}")  # the server's own output, before it is ready
        lines.until("serving Truss routes on")
        lines.until("is ready at")
        assert container_exists(docker_client, echo.container)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        text = lines.rest()
        assert code == 130, "".join(lines.seen) + text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "shutting down" in text  # the server's own words on SIGTERM, streamed to the end
    assert f"stopped and removed {echo.container}" in text
    assert not container_exists(docker_client, echo.container)


def test_logs_show_the_server_start_and_stop_ends_it(echo: Truss, docker_client: Any) -> None:
    port = free_port()
    ok(pack_cli("run", str(echo.path), "--base-image", BASE_IMAGE, "--port", str(port), "--detach",
                "--progress", "quiet"))
    out = ok(pack_cli("logs", str(echo.path)))
    lines = out.splitlines()
    assert any(f"loading {echo.marker}" in line for line in lines)
    assert any("serving Truss routes on" in line for line in lines)
    # The server writes JSON records, as Truss's does (print() output is not); `pack logs` shows
    # them as plain lines, and --json passes each line as the container wrote it.
    assert any(line.endswith(" INFO model ready") and not line.startswith("{") for line in lines)
    raw = [json.loads(line) for line in ok(pack_cli("logs", str(echo.path), "--json")).splitlines()]
    assert {r["container"] for r in raw} == {echo.container}
    assert any(r["line"].startswith("{") and json.loads(r["line"]).get("message") == "model ready" for r in raw)
    last = [json.loads(line) for line in ok(pack_cli("logs", str(echo.path), "--tail", "1", "--json")).splitlines()]
    assert len(last) == 1 and last[0]["line"] == raw[-1]["line"]

    stopped = json.loads(ok(pack_cli("stop", str(echo.path), "--json")))
    assert [c["name"] for c in stopped["stopped"]] == [echo.container]
    assert not container_exists(docker_client, echo.container)
    assert docker_client.volumes.get(echo.volume).attrs["Labels"][constants.LABEL_TRUSS] == str(
        (echo.path / "config.yaml").resolve())  # the weights volume stays for the next run


def test_cleanup_removes_exactly_what_its_dry_run_lists_and_nothing_of_another_truss(
        e2e_env: Any, base_image: str, resources: Resources, docker_client: Any,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    mine = make_truss(tmp_path_factory.mktemp("mine") / "t", resources)
    theirs = make_truss(tmp_path_factory.mktemp("theirs") / "t", resources)
    try:
        ok(pack_cli("build", str(mine.path), "--base-image", BASE_IMAGE, "--progress", "quiet"))
        (mine.path / "model" / "model.py").write_text(model_code(mine.marker) + "# edited\n")
        for truss in (mine, theirs):  # the edited code: a second image of mine
            ok(pack_cli("run", str(truss.path), "--base-image", BASE_IMAGE, "--port", str(free_port()),
                        "--detach", "--progress", "quiet"))
        new, old = forget_images(mine, resources, docker_client)
        [their_image] = forget_images(theirs, resources, docker_client)

        dry = json.loads(ok(pack_cli("cleanup", str(mine.path), "--dry-run", "--build-cache", "--json")))
        listed = {(i["kind"], i["name"]) for i in dry["items"]}
        assert {("container", mine.container), ("volume", mine.volume), ("image", old)} <= listed
        assert {kind for kind, _ in listed} <= {"container", "volume", "image", "build-cache"}
        assert not {name for _, name in listed} & {theirs.container, theirs.volume, their_image, new}
        assert [i["name"] for i in dry["kept"]] == [new]
        assert container_exists(docker_client, mine.container)  # a dry run removes nothing
        docker_client.images.get(old)

        real = json.loads(ok(pack_cli("cleanup", str(mine.path), "--build-cache", "--json")))
        assert real["failed"] == [] and real["items"] == dry["items"] and real["kept"] == dry["kept"]
        import docker

        assert not container_exists(docker_client, mine.container)
        with pytest.raises(docker.errors.NotFound):
            docker_client.volumes.get(mine.volume)
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(old)
        docker_client.images.get(new)
        # The other truss keeps everything.
        assert docker_client.containers.get(theirs.container).status == "running"
        docker_client.volumes.get(theirs.volume)
        docker_client.images.get(their_image)
    finally:
        for truss in (mine, theirs):
            forget_images(truss, resources, docker_client)


@pytest.fixture(scope="module")
def appuser_base(base_image: str, resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> str:
    tag = resources.tag("ct-appuser-base")
    context = write_context(tmp_path_factory.mktemp("appuser-base"),
                            f"FROM {base_image}\nRUN useradd --create-home --uid 4321 appuser\nUSER appuser\n")
    open_engine().build(BuildRequest(context, tag=tag))
    return tag


def control_status(port: int, token: str | None) -> tuple[int | None, Any]:
    """GET /v1/dev/status on the control port: (status, JSON body); (None, reason) when nothing
    listens."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/dev/status", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))


@pytest.mark.parametrize("user", ["root", "appuser"])
def test_only_the_dev_image_has_the_reload_control(user: str, echo: Truss, request: pytest.FixtureRequest,
                                                   resources: Resources, docker_client: Any) -> None:
    base = BASE_IMAGE if user == "root" else request.getfixturevalue("appuser_base")
    build = api.build(echo.path, BuildOptions(base_image=base), tag=resources.tag(f"ct-build-{user}"))
    _, dev_plan = api.plan(echo.path, BuildOptions(base_image=base, dev=True), engine=open_engine())
    dev = build_image(dev_plan, tag=resources.tag(f"ct-dev-{user}"))
    # The layer cache: everything but the one dev layer comes from the build just made.
    assert len(dev.image.built_steps) == 1 and len(dev.image.cached_steps) == len(
        build.image.built_steps) + len(build.image.cached_steps), (dev.image.built_steps, dev.image.cached_steps)

    token = unique("token")
    control = {port: free_port() for port in ("build", "dev")}
    for kind, result in (("build", build), ("dev", dev)):
        env = {constants.PACK_DEV_CONTROL_PORT: str(control[kind]), constants.PACK_DEV_CONTROL_TOKEN: token}
        running = start(result, result.plan, resources, timeout=120, env=env)
        try:
            name = running.container.name
            if kind == "build":
                status, _ = control_status(control[kind], token)
                assert status in (None, 404)  # nothing listens (or nothing answers that route)
                code, _ = docker_client.containers.get(name).exec_run(["test", "-e", DEV_RUNTIME_IMAGE_PATH])
                assert code != 0, "an image from `pack build` carries no packager/runtime/dev"
            else:
                assert control_status(control[kind], None)[0] == 401
                status, body = control_status(control[kind], token)
                assert status == 200 and body["generation"] == 1 and body["state"] == "serving", body
            # What a patch does (as the server's user): replace code and the config in place.
            replace = ("cd /app/model && cp model.py .next && mv .next model.py && "
                       "cd /app && cp config.yaml .next && mv .next config.yaml")
            code, out = docker_client.containers.get(name).exec_run(["sh", "-c", replace])
            assert (code == 0) == (kind == "dev" or user == "root"), out
        finally:
            running.container.remove()
