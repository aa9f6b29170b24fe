"""What pack leaves for a truss, over the FakeEngine: the labels runs and builds put on it, and
`pack logs`, `pack stop`, `pack cleanup` and `pack run` in the foreground (its output streamed,
SIGTERM stopping and removing the container) through the API and the CLI."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from packager import api
from packager.cli import main as cli_main
from packager.cli import run_cmds
from packager.constants import LABEL_MODEL_NAME, LABEL_TRUSS
from packager.engine import BuiltImage, CacheEntry, FakeContainer, FakeEngine
from packager.errors import PackError
from tests.fixtures.docker_env import free_port

BASE = "pack-base:bookworm-py311"
MODEL = "class Model:\n    def predict(self, x):\n        return x\n"
OTHER_PROJECT_CACHE = CacheEntry("other1", "exec.cachemount",
                                 "cached mount /root/.cache/pip from exec /bin/sh -c pip install flask", 10, False)


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    fake = FakeEngine()
    fake.images[BASE] = BuiltImage("sha256:" + "b" * 64, (BASE,), 1)
    fake.cache.append(OTHER_PROJECT_CACHE)
    return fake


def truss(root: Path, name: str, model: str = MODEL) -> Path:
    (root / "model").mkdir(parents=True, exist_ok=True)
    (root / "model" / "model.py").write_text(model)
    (root / "config.yaml").write_text(f"model_name: {name}\npython_version: py311\nrequirements: [numpy]\n")
    return root


def run(root: Path, engine: FakeEngine, port: int) -> FakeContainer:
    api.run(root, api.BuildOptions(base_image=BASE), port=port, timeout=10, engine=engine)
    container = engine.containers[-1]
    assert isinstance(container, FakeContainer)
    return container


def key(root: Path) -> str:
    return str((root / "config.yaml").resolve())


def test_builds_and_runs_label_what_they_create(engine: FakeEngine, tmp_path: Path, ready_port: int) -> None:
    alpha = truss(tmp_path / "a", "alpha")
    container = run(alpha, engine, ready_port)
    labels = {LABEL_TRUSS: key(alpha), LABEL_MODEL_NAME: "alpha"}
    assert container.labels.items() >= labels.items()
    assert engine.volumes["pack-weights-alpha"].labels == labels
    assert engine.image_labels[container.image].items() >= labels.items()  # beside the provenance labels
    assert [c.name for c in api.containers(alpha, engine=engine)] == ["pack-alpha"]


def test_logs_are_the_running_containers_output(engine: FakeEngine, tmp_path: Path, ready_port: int) -> None:
    alpha = truss(tmp_path / "a", "alpha")
    with pytest.raises(PackError, match="no container of") as info:
        api.logs(alpha, engine=engine)
    assert info.value.hint and "pack run" in info.value.hint
    container = run(alpha, engine, ready_port)
    for line in ("starting", "serving Truss routes on 127.0.0.1", "model ready"):
        container.say(line)
    found = api.logs(alpha, engine=engine)
    assert found.container.name == "pack-alpha"
    assert list(found.lines) == ["starting", "serving Truss routes on 127.0.0.1", "model ready"]
    assert list(api.logs(alpha, tail=1, engine=engine).lines) == ["model ready"]

    # Following: the lines so far, each new one, and the end when the container stops.
    followed = api.logs(alpha, follow=True, tail=1, engine=engine).lines
    assert next(followed) == "model ready"

    def later() -> None:
        container.say("a request")
        container.stop()

    threading.Thread(target=later).start()
    assert list(followed) == ["a request"]


def test_stop_stops_and_removes_this_trusses_containers_only(engine: FakeEngine, tmp_path: Path,
                                                             ready_port: int) -> None:
    alpha, beta = truss(tmp_path / "a", "alpha"), truss(tmp_path / "b", "beta")
    mine, theirs = run(alpha, engine, ready_port), run(beta, engine, ready_port)
    stopped = api.stop(alpha, engine=engine)
    assert [c.name for c in stopped] == [mine.name]
    assert (mine.state, theirs.state) == ("removed", "running")
    assert api.stop(alpha, engine=engine) == []
    assert "pack-weights-alpha" in engine.volumes  # the weights stay for the next run


def test_cleanup_removes_exactly_what_its_dry_run_lists(engine: FakeEngine, tmp_path: Path, ready_port: int) -> None:
    alpha, beta = truss(tmp_path / "a", "alpha"), truss(tmp_path / "b", "beta")
    first = api.build(alpha, api.BuildOptions(base_image=BASE), engine=engine)
    (alpha / "model" / "model.py").write_text(MODEL + "# edited\n")
    container = run(alpha, engine, ready_port)  # builds the edited code: a second image
    run(beta, engine, ready_port)
    newest = container.image
    assert newest != first.image.id

    assert {i.kind for i in api.cleanup(alpha, dry_run=True, engine=engine).items} == {
        "container", "volume", "image"}  # the shared build cache only on request
    dry = api.cleanup(alpha, dry_run=True, build_cache=True, engine=engine)
    assert dry.dry_run and [i.name for i in dry.kept] == [t for t, i in engine.images.items()
                                                          if i.id == newest and t != newest]
    listed = {(i.kind, i.name) for i in dry.items}
    pack_cache = {("build-cache", e.id) for e in engine.cache if e is not OTHER_PROJECT_CACHE}
    assert pack_cache, "the builds used pack's pip cache mount"
    assert listed == {("container", "pack-alpha"), ("volume", "pack-weights-alpha"),
                      ("image", first.tag)} | pack_cache
    assert container.state == "running" and engine.image(first.image.id) is not None  # nothing removed

    real = api.cleanup(alpha, build_cache=True, engine=engine)
    assert not real.dry_run and real.items == dry.items and real.failed == ()
    assert container.state == "removed" and "pack-weights-alpha" not in engine.volumes
    assert engine.image(first.image.id) is None and engine.image(newest) is not None
    assert engine.cache == [OTHER_PROJECT_CACHE]
    # Nothing of the other truss.
    assert [c.name for c in api.containers(beta, engine=engine)] == ["pack-beta"]
    assert "pack-weights-beta" in engine.volumes
    assert len(engine.list_images({LABEL_TRUSS: key(beta)})) == 1

    again = api.cleanup(alpha, keep=0, engine=engine)
    assert [i.kind for i in again.items] == ["image"] and engine.list_images({LABEL_TRUSS: key(alpha)}) == []


def test_cleanup_reports_what_the_engine_refuses_and_goes_on(engine: FakeEngine, tmp_path: Path,
                                                             ready_port: int) -> None:
    alpha, beta = truss(tmp_path / "a", "alpha"), truss(tmp_path / "b", "beta")
    run(alpha, engine, ready_port)
    # beta runs on alpha's weight volume (a --cache-volume of its own choosing): still in use.
    api.run(beta, api.BuildOptions(base_image=BASE), port=ready_port, timeout=10, cache_volume="pack-weights-alpha",
            engine=engine)
    report = api.cleanup(alpha, build_cache=True, engine=engine)
    assert [(i.kind, i.name) for i, _ in report.failed] == [("volume", "pack-weights-alpha")]
    assert "in use" in report.failed[0][1]
    assert {i.kind for i in report.items} == {"container", "build-cache"}
    with pytest.raises(PackError, match="cannot keep fewer"):
        api.cleanup(alpha, keep=-1, engine=engine)


def cli(args: list[str], engine: FakeEngine, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli_main.main(args, engine=engine)
    return code, capsys.readouterr().out


def test_the_commands_print_json(engine: FakeEngine, tmp_path: Path, ready_port: int,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    alpha = truss(tmp_path / "a", "alpha")
    run(alpha, engine, ready_port).say("model ready")
    code, out = cli(["logs", str(alpha), "--json"], engine, capsys)
    assert code == 0 and [json.loads(line) for line in out.splitlines()] == [{"container": "pack-alpha",
                                                                             "line": "model ready"}]
    code, out = cli(["cleanup", str(alpha), "--dry-run", "--json"], engine, capsys)
    dry = json.loads(out)
    assert code == 0 and dry["dry_run"] and {"kind": "container", "name": "pack-alpha", "detail": "running",
                                             "size": None} in dry["items"]
    code, out = cli(["stop", str(alpha), "--json"], engine, capsys)
    assert code == 0 and [c["name"] for c in json.loads(out)["stopped"]] == ["pack-alpha"]
    code, out = cli(["cleanup", str(alpha)], engine, capsys)
    assert code == 0 and "removed volume pack-weights-alpha" in out.splitlines()
    assert not any(line.startswith("removed container") for line in out.splitlines())  # stopped already


def _sigterm_when(ready: threading.Event) -> threading.Thread:
    def send() -> None:
        if ready.wait(30):
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_a_foreground_run_streams_the_output_and_sigterm_removes_the_container(
        engine: FakeEngine, tmp_path: Path, ready_port: int, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    alpha = truss(tmp_path / "a", "alpha")
    streamed: list[str] = []
    attached = threading.Event()
    real_output, real_attach = run_cmds.output_line, api.attach

    def output_line(line: str) -> None:
        streamed.append(line)
        real_output(line)

    def attach(running: object, stop: threading.Event | None = None) -> int | None:
        attached.set()
        return real_attach(running, stop)  # type: ignore[arg-type]

    monkeypatch.setattr(run_cmds, "output_line", output_line)
    monkeypatch.setattr(api, "attach", attach)
    # The server's first words, said as soon as the container starts (before readiness).
    engine.run = _saying(engine.run, "serving Truss routes on 127.0.0.1")  # type: ignore[method-assign]
    sender = _sigterm_when(attached)
    code, out = cli(["run", str(alpha), "--base-image", BASE, "--port", str(ready_port), "--progress", "quiet"],
                    engine, capsys)
    sender.join(5)
    assert code == 130
    container = engine.containers[-1]
    assert container.state == "removed"
    assert streamed[0] == "serving Truss routes on 127.0.0.1"
    assert "serving Truss routes on 127.0.0.1" in out and "is ready at" in out


def test_sigterm_before_the_model_is_ready_removes_the_container_too(
        engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alpha = truss(tmp_path / "a", "alpha")
    started = threading.Event()
    engine.run = _saying(engine.run, "loading", started.set)  # type: ignore[method-assign]
    sender = _sigterm_when(started)
    # Nothing answers readiness on this port: the run waits until the signal.
    code, _ = cli(["run", str(alpha), "--base-image", BASE, "--port", str(free_port()), "--progress", "quiet"],
                  engine, capsys)
    sender.join(5)
    assert code == 130 and engine.containers[-1].state == "removed"


def _saying(run: Callable[..., FakeContainer], line: str,
            then: Callable[[], None] | None = None) -> Callable[..., FakeContainer]:
    def wrapped(request: object) -> FakeContainer:
        container = run(request)
        container.say(line)
        if then is not None:
            then()
        return container

    return wrapped
