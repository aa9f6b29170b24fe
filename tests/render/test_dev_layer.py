"""Dev images (BuildOptions(dev=True), what `pack watch` builds): the build render plus one last
layer with the reload control; every other file and line is the build render's, so the two
images share every other layer. Build renders never carry packager/runtime/dev."""

from __future__ import annotations

import filecmp
from dataclasses import replace
from pathlib import Path

import pytest

from packager import api
from packager.builder import context_dir_for
from packager.builder.image import default_tag
from packager.engine import BuiltImage, FakeEngine
from packager.errors import PlanError
from packager.plan import context_sources
from packager.plan.model import BuildOptions
from packager.render import render_context
from packager.render.context import DEV_RUNTIME_DIR, DEV_RUNTIME_IMAGE_PATH

from .conftest import make_truss
from .dockerfile import parse

CONFIG = "model_name: devmodel\npython_version: py311\nrequirements: [numpy]\n"
DOCKER_SERVER = ("model_name: devserver\ndocker_server:\n  start_command: python3 -m http.server 8000\n"
                 "  server_port: 8000\n  predict_endpoint: /predict\n  readiness_endpoint: /\n"
                 "  liveness_endpoint: /\n")
LAYER_KEYWORDS = {"RUN", "COPY", "ADD"}  # the instructions that add a filesystem layer
BASE = "pack-base:bookworm-py311"


@pytest.fixture
def dev_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in reload control package (outside the repository), with a cache file the copy
    must leave out."""
    package = tmp_path / "runtime-dev"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text('"""stand-in"""\n')
    (package / "control.py").write_text("PORT_ENV = 'x'\n")
    (package / "__pycache__" / "control.cpython-311.pyc").write_bytes(b"\0")
    monkeypatch.setattr(context_sources, "dev_runtime_dir", lambda: package)
    return package


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_a_dev_render_is_the_build_render_plus_one_last_layer(tmp_path: Path, dev_runtime: Path) -> None:
    truss = make_truss(tmp_path / "t", CONFIG)
    _, build = api.render(truss, tmp_path / "build")
    plan, dev = api.render(truss, tmp_path / "dev", BuildOptions(dev=True))
    assert plan.dev and plan.sources.dev_runtime == str(dev_runtime)

    build_text, dev_text = (build.path / "Dockerfile").read_text(), (dev.path / "Dockerfile").read_text()
    assert dev_text.startswith(build_text), "every line of the build Dockerfile comes first, unchanged"
    added = parse(dev_text[len(build_text):])
    assert [str(i) for i in added] == [f"COPY {DEV_RUNTIME_DIR} {DEV_RUNTIME_IMAGE_PATH}"]

    # The context: the build's files, byte for byte, plus the reload control (no cache files).
    extra = _files(dev.path) - _files(build.path)
    assert extra == {f"{DEV_RUNTIME_DIR}/__init__.py", f"{DEV_RUNTIME_DIR}/control.py"}
    shared = sorted(_files(build.path) - {"Dockerfile"})
    assert shared and filecmp.cmpfiles(build.path, dev.path, shared, shallow=False)[0] == shared
    assert (dev.path / DEV_RUNTIME_DIR / "control.py").read_text() == "PORT_ENV = 'x'\n"


def test_a_build_render_leaves_the_reload_control_out(tmp_path: Path) -> None:
    # The real package, which the runtime copy would otherwise take along with the rest.
    assert context_sources.dev_runtime_dir().is_dir(), "packager/runtime/dev is part of pack"
    plan, build = api.render(make_truss(tmp_path / "t", CONFIG), tmp_path / "build")
    assert not plan.dev and plan.sources.dev_runtime is None
    runtime = build.path / "pack" / "runtime" / "packager" / "runtime"
    assert (runtime / "serving").is_dir() and not (runtime / "dev").exists()
    assert not [f for f in _files(build.path) if "/runtime/dev/" in f or f.startswith(DEV_RUNTIME_DIR)]


def test_a_non_root_server_gets_the_code_directories_in_the_same_layer(tmp_path: Path, dev_runtime: Path) -> None:
    _, plan = api.plan(make_truss(tmp_path / "t", CONFIG), BuildOptions(dev=True))
    build_plan = replace(plan, dev=False, runtime_user="appuser")
    build = render_context(replace(build_plan, sources=replace(plan.sources, dev_runtime=None)), tmp_path / "b")
    dev = render_context(replace(plan, runtime_user="appuser"), tmp_path / "d")
    build_text, dev_text = (build.path / "Dockerfile").read_text(), (dev.path / "Dockerfile").read_text()
    assert dev_text.startswith(build_text)
    added = parse(dev_text[len(build_text):])
    # pack's step needs root; the server's user is back for the entrypoint.
    assert [i.keyword for i in added] == ["USER", "RUN", "USER"]
    assert (added[0].args, added[2].args) == ("root", "appuser")
    run = added[1]
    assert [i for i in added if i.keyword in LAYER_KEYWORDS] == [run]
    assert run.flags == [f"--mount=type=bind,source={DEV_RUNTIME_DIR},target=/tmp/pack-dev"]
    assert f"cp -R /tmp/pack-dev {DEV_RUNTIME_IMAGE_PATH}" in run.args
    assert "chown appuser /app /app/config.yaml" in run.args
    # Directories only: chowning the files would copy every byte of them into the layer.
    assert "find /app/model /app/data /app/.pack /packages -type d -exec chown appuser {} +" in run.args


def test_docker_server_trusses_get_no_dev_layer(tmp_path: Path, dev_runtime: Path) -> None:
    truss = tmp_path / "ds"
    truss.mkdir()
    (truss / "config.yaml").write_text(DOCKER_SERVER)
    _, build = api.render(truss, tmp_path / "build")
    plan, dev = api.render(truss, tmp_path / "dev", BuildOptions(dev=True))
    assert not plan.dev and any("no reload control" in n for n in plan.notes)
    assert (dev.path / "Dockerfile").read_text() == (build.path / "Dockerfile").read_text()
    assert dev.digest == build.digest


def test_a_pack_without_the_reload_control_cannot_plan_a_dev_image(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context_sources, "dev_runtime_dir", lambda: tmp_path / "missing")
    with pytest.raises(PlanError, match="no reload control") as info:
        api.plan(make_truss(tmp_path / "t", CONFIG), BuildOptions(dev=True))
    assert info.value.hint


def test_a_dev_image_has_its_own_tag_and_context(tmp_path: Path, dev_runtime: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    truss = make_truss(tmp_path / "t", CONFIG)
    _, build_plan = api.plan(truss)
    _, dev_plan = api.plan(truss, BuildOptions(dev=True))
    assert context_dir_for(dev_plan) != context_dir_for(build_plan)
    build = render_context(build_plan, context_dir_for(build_plan))
    dev = render_context(dev_plan, context_dir_for(dev_plan))
    assert default_tag(build_plan, build) == f"devmodel:{build.digest[:12]}"
    assert default_tag(dev_plan, dev) == f"devmodel:dev-{dev.digest[:12]}"


def test_after_a_build_the_dev_image_builds_one_new_layer(tmp_path: Path, dev_runtime: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the FakeEngine's layer cache: the dev build finds every step of the build cached."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    engine = FakeEngine()
    engine.images[BASE] = BuiltImage("sha256:" + "b" * 64, (BASE,), 1)
    truss = make_truss(tmp_path / "t", CONFIG)
    built = api.build(truss, BuildOptions(base_image=BASE), engine=engine)
    dev = api.build(truss, BuildOptions(base_image=BASE, dev=True), engine=engine)
    assert [s.split("] ", 1)[1] for s in dev.image.built_steps] == [f"COPY {DEV_RUNTIME_DIR} {DEV_RUNTIME_IMAGE_PATH}"]
    assert len(dev.image.cached_steps) == len(built.image.built_steps)
    assert dev.tag.startswith("devmodel:dev-") and engine.image(built.tag) == built.image  # the build tag stays
    record = api.last_build(truss)  # what `pack run` reuses is the build's, not the dev image's
    assert record is not None and record.tag == built.tag
