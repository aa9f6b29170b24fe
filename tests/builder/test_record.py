"""`pack run DIR` after `pack build DIR --base-image X` builds FROM X again (the default base
cannot be pulled offline): the build records what it used in pack's cache (never in the truss
directory), run reuses it and says so in one line, and an explicit --base-image wins.

The engine is the FakeEngine (no Docker); readiness is real HTTP on the port the run was given.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from packager.builder import read_record, record_path
from packager.cli.main import main
from packager.engine import BuiltImage, FakeEngine
from packager.api.target import resolve_target

BASE_X = "pack-base:bookworm-py311"
BASE_Y = "registry.local/other-base:1"
DEFAULT_BASE = "python:3.11-slim-bookworm"
MODEL = "class Model:\n    def predict(self, x):\n        return x\n"


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeEngine:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    fake = FakeEngine()
    for base in (BASE_X, BASE_Y):
        fake.images[base] = BuiltImage("sha256:" + base.encode().hex()[:64].ljust(64, "0"), (), 1)
    return fake


def make_truss(root: Path) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.py").write_text(MODEL)
    (root / "config.yaml").write_text("model_name: reuse-me\npython_version: py311\n")
    return root


def last_from(engine: FakeEngine) -> str:
    dockerfile = (engine.builds[-1].context_dir / "Dockerfile").read_text()
    return re.findall(r"^FROM (\S+)", dockerfile, re.M)[-1]


def run(engine: FakeEngine, truss: Path, port: int, *extra: str) -> int:
    return main(["run", str(truss), "--port", str(port), "--detach", "--timeout", "10", "--progress", "plain",
                 *extra], engine=engine)


def test_run_reuses_the_base_image_of_the_last_build(engine: FakeEngine, ready_port: int, tmp_path: Path,
                                                     capsys) -> None:
    root = make_truss(tmp_path / "truss")
    before = sorted(p.name for p in root.rglob("*"))
    assert main(["build", str(root), "--base-image", BASE_X, "--json"], engine=engine) == 0
    assert last_from(engine) == BASE_X
    record = read_record(resolve_target(root).key)
    assert record is not None and record.base_image == BASE_X and record.image_id == engine.builds[-1].image.id
    assert record_path(resolve_target(root).key).is_relative_to(tmp_path / "xdg-cache" / "pack" / "builds")
    assert sorted(p.name for p in root.rglob("*")) == before  # nothing written into the truss
    capsys.readouterr()

    assert run(engine, root, ready_port) == 0
    err = capsys.readouterr().err
    assert last_from(engine) == BASE_X
    assert DEFAULT_BASE not in engine.pulls
    notes = [line for line in err.splitlines() if "of the last build" in line]
    assert notes == [f"building FROM {BASE_X}, the --base-image of the last build of {root} (pass "
                     "--base-image to choose another)"]
    # The same context as the build's: the run rebuilt nothing.
    assert engine.builds[-1].image.built_steps == ()

    # An explicit --base-image wins, without the note, and is what the next run reuses.
    assert run(engine, root, ready_port, "--base-image", BASE_Y) == 0
    assert last_from(engine) == BASE_Y
    assert "the --base-image of the last build" not in capsys.readouterr().err
    assert run(engine, root, ready_port) == 0
    assert last_from(engine) == BASE_Y

    # A build without --base-image records none: the run builds FROM the default again.
    assert main(["build", str(root), "--json"], engine=engine) == 0
    assert read_record(resolve_target(root).key).base_image is None
    capsys.readouterr()
    assert run(engine, root, ready_port) == 0
    assert last_from(engine) == DEFAULT_BASE
    assert "the --base-image of the last build" not in capsys.readouterr().err


def test_records_are_per_config_file(engine: FakeEngine, ready_port: int, tmp_path: Path) -> None:
    root = make_truss(tmp_path / "truss")
    other = root / "other.yaml"
    other.write_text("model_name: other\n")
    assert main(["build", str(root), "--config", str(other), "--base-image", BASE_Y, "--json"], engine=engine) == 0
    assert main(["build", str(root), "--base-image", BASE_X, "--json"], engine=engine) == 0
    assert run(engine, root, ready_port, "--config", str(other)) == 0
    assert last_from(engine) == BASE_Y
    assert run(engine, root, ready_port) == 0
    assert last_from(engine) == BASE_X


def test_a_model_file_run_reuses_its_build_base(engine: FakeEngine, ready_port: int, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from chains.framework import errors, registry

    saved = dict(registry.by_name), dict(registry.descriptors)
    source = tmp_path / "src" / "reuse_model.py"
    source.parent.mkdir()
    source.write_text(textwrap.dedent("""
        import truss_chains as chains


        class ReuseModel(chains.ModelBase):
            def predict(self, x: int) -> int:
                return x
    """))
    monkeypatch.syspath_prepend(str(source.parent))
    try:
        assert main(["build", str(source), "--base-image", BASE_X, "--json"], engine=engine) == 0
        assert run(engine, source, ready_port) == 0
        assert last_from(engine) == BASE_X
        assert engine.builds[-1].tag.startswith("reusemodel:")
    finally:
        import sys

        sys.modules.pop("reuse_model", None)
        errors.take()
        registry.by_name.clear()
        registry.by_name.update(saved[0])
        registry.descriptors.clear()
        registry.descriptors.update(saved[1])
