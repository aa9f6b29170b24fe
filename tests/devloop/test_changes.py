"""What an edit asks of a running dev container: a patch, a rebuild, or nothing (pure: plans of a
truss before and after the edit, no engine)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from packager import api
from packager.devloop import Patch, Rebuild, Unchanged, classify
from packager.devloop.watcher import is_ignored, watched_paths
from packager.plan.model import BuildOptions, BuildPlan
from packager.render.code_layout import ImagePath, host_file

REPO = Path(__file__).resolve().parents[2]
OPTIONS = BuildOptions(base_image="pack-base:bookworm-py311")


@pytest.fixture
def truss(tmp_path: Path) -> Path:
    root = tmp_path / "echo"
    shutil.copytree(REPO / "sample_trusses" / "echo", root)
    (root / "packages" / "helpers").mkdir(parents=True)
    (root / "packages" / "helpers" / "__init__.py").write_text("X = 1\n")
    return root


def plan(truss: Path) -> BuildPlan:
    return api.plan(truss, OPTIONS)[1]


def edit(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_code_edits_are_patched_where_the_image_has_them(truss: Path) -> None:
    before = plan(truss)
    model = edit(truss / "model" / "model.py", (truss / "model" / "model.py").read_text() + "\n# edited\n")
    helper = edit(truss / "model" / "helper.py", "Y = 2\n")
    package = edit(truss / "packages" / "helpers" / "__init__.py", "X = 2\n")
    data = edit(truss / "data" / "motto.txt", "new motto\n")
    change = classify(before, plan(truss), [model, helper, package, data])
    assert isinstance(change, Patch)
    assert {(f.target, f.source) for f in change.files} == {
        (ImagePath("app", "model/model.py"), model), (ImagePath("app", "model/helper.py"), helper),
        (ImagePath("packages", "helpers/__init__.py"), package), (ImagePath("app", "data/motto.txt"), data)}
    assert change.config == {}
    assert set(change.changed) == {"model/model.py", "model/helper.py", "packages/helpers/__init__.py",
                                   "data/motto.txt"}


def test_a_deleted_file_is_removed_and_a_new_directory_is_sent_whole(truss: Path) -> None:
    before = plan(truss)
    gone = truss / "packages" / "helpers" / "__init__.py"
    gone.unlink()
    edit(truss / "model" / "sub" / "a.py", "A = 1\n")
    edit(truss / "model" / "sub" / "b.py", "B = 1\n")
    change = classify(before, plan(truss), [gone, truss / "model" / "sub"])
    assert isinstance(change, Patch)
    assert {(str(f.target), f.source is None) for f in change.files} == {
        ("packages:helpers/__init__.py", True), ("app:model/sub/a.py", False), ("app:model/sub/b.py", False)}


def test_files_the_image_leaves_out_change_nothing(truss: Path) -> None:
    before = plan(truss)
    edited = [edit(truss / "README.md", "notes\n"), edit(truss / "model" / "__pycache__" / "m.cpython-311.pyc", "x"),
              edit(truss / "model" / "old.pyc", "x"), edit(truss / ".git" / "HEAD", "ref\n")]
    assert isinstance(classify(before, plan(truss), edited), Unchanged)


def test_live_config_keys_patch_the_config_documents(truss: Path) -> None:
    before = plan(truss)
    config = truss / "config.yaml"
    config.write_text(config.read_text().replace("predict_concurrency: 2", "predict_concurrency: 4")
                      .replace('{"text": "hello"}', '{"text": "bye"}'))
    change = classify(before, plan(truss), [config])
    assert isinstance(change, Patch) and change.files == () and change.changed == ("config.yaml",)
    assert set(change.config) == {"config.yaml", ".pack/config.json"}
    assert b'"predict_concurrency": 4' in change.config[".pack/config.json"]
    assert b"predict_concurrency: 4" in change.config["config.yaml"]


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("GREETING: hello", "GREETING: bonjour", "config.yaml: environment_variables.GREETING changed: rebuilding"),
    ("requirements: []", "requirements: [six]", "config.yaml: requirements changed: rebuilding"),
    ("  memory: 512Mi", "  memory: 1Gi", "config.yaml: resources.memory changed: rebuilding"),
    ("  api_key: null", "  api_key: null\n  other: null", "config.yaml: secrets.other changed: rebuilding"),
])
def test_config_keys_that_shape_the_image_rebuild(truss: Path, old: str, new: str, reason: str) -> None:
    before = plan(truss)
    config = truss / "config.yaml"
    config.write_text(config.read_text().replace(old, new))
    assert classify(before, plan(truss), [config]) == Rebuild(reason)


def test_a_requirements_file_edit_rebuilds_and_names_the_file(truss: Path) -> None:
    config = truss / "config.yaml"
    config.write_text(config.read_text().replace("requirements: []", "requirements_file: requirements.txt"))
    edit(truss / "requirements.txt", "six\n")
    before = plan(truss)
    requirements = edit(truss / "requirements.txt", "six\nidna\n")
    assert classify(before, plan(truss), [requirements]) == Rebuild("requirements.txt changed: rebuilding")


def test_a_code_edit_that_changes_the_plan_rebuilds(truss: Path) -> None:
    # Importing fastapi brings that Truss server package into the image (its own layer).
    before = plan(truss)
    model = truss / "model" / "model.py"
    edit(model, "import fastapi  # noqa\n" + model.read_text())
    change = classify(before, plan(truss), [model])
    assert isinstance(change, Rebuild)
    assert change.reason == "the code's imports of Truss's server packages changed: rebuilding"


def test_error_locations_map_back_to_the_truss(truss: Path) -> None:
    sources = plan(truss).sources
    assert host_file(sources, "/app/model/model.py") == truss / "model" / "model.py"
    assert host_file(sources, "/packages/helpers/__init__.py") == truss / "packages" / "helpers" / "__init__.py"
    assert host_file(sources, "/app/packager/runtime/serving/server.py") is None


def test_watched_paths_and_ignored_files(truss: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared_lib"
    edit(shared / "lib.py", "Z = 1\n")
    config = truss / "config.yaml"
    config.write_text(config.read_text() + f"external_package_dirs: [{shared}]\n")
    current = plan(truss)
    assert watched_paths(current) == (truss.resolve(), shared.resolve())
    for name in ("model/.model.py.swp", "model/model.py~", "model/4913", "model/.#model.py", ".pack.lock.x1",
                 "model/__pycache__/x.pyc"):
        assert is_ignored(truss / name), name
    assert not is_ignored(truss / "model" / "model.py")
