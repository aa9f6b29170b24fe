"""`--config FILE` on every command that takes a truss, with Truss's semantics (FILE replaces
DIR/config.yaml; model/, data/, packages/ and requirements stay relative to DIR), and the lock
that follows the config (other.yaml -> other.pack.lock beside it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from packager import api
from packager.cli.main import main
from packager.config import load_config
from packager.plan.lock import lock_path, read_lock
from packager.api.target import resolve_target

MODEL = "class Model:\n    def __init__(self, **kwargs):\n        pass\n    def predict(self, x):\n        return x\n"
WEIGHTS = """\
model_cache:
  - repo_id: acme/tiny
    revision: main
    use_volume: true
    volume_folder: tiny
"""


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


def make_truss(root: Path) -> Path:
    """DIR with config.yaml (model_name: main-config), model/, data/ and a requirements file;
    a second config lives elsewhere and names the same relative files."""
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.py").write_text(MODEL)
    (root / "data").mkdir()
    (root / "data" / "words.txt").write_text("hello\n")
    (root / "reqs.txt").write_text("six\n")
    (root / "config.yaml").write_text("model_name: main-config\n")
    return root


def other_config(path: Path, extra: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("model_name: other-config\nrequirements_file: reqs.txt\n" + extra)
    return path


def test_config_replaces_config_yaml_and_paths_stay_relative_to_dir(tmp_path: Path, capsys) -> None:
    root = make_truss(tmp_path / "truss")
    other = other_config(tmp_path / "elsewhere" / "other.yaml")  # no reqs.txt beside it
    assert main(["config", str(root), "--config", str(other), "--json"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["model_name"] == "other-config"
    assert resolved["requirements_file"] == "reqs.txt"
    loaded = api.check(root, config=other)
    assert loaded.truss_dir == root and loaded.file == other

    assert main(["check", str(root), "--config", str(other)]) == 0
    assert f"{other} is valid" in capsys.readouterr().out
    assert main(["config", str(root), "--json"]) == 0  # without --config: DIR/config.yaml
    assert json.loads(capsys.readouterr().out)["model_name"] == "main-config"
    # A problem in the other file is reported in that file, at its line.
    other.write_text("model_name: other-config\nrequirements_file: missing.txt\n")
    assert main(["check", str(root), "--config", str(other)]) == 1
    assert f"{other}:2:" in capsys.readouterr().err


def test_missing_or_unreadable_config_names_the_file(tmp_path: Path, capsys) -> None:
    root = make_truss(tmp_path / "truss")
    missing = tmp_path / "nope.yaml"
    for command in (["check"], ["config"], ["lock"], ["render", "-o", str(tmp_path / "ctx")], ["build"],
                    ["run"], ["push", "--image", "127.0.0.1:5000/x:y"]):
        assert main([*command, str(root), "--config", str(missing)]) == 1, command
        err = capsys.readouterr().err
        assert f"{missing}: error: config file not found" in err, (command, err)
    assert main(["check", str(root), "--config", str(tmp_path)]) == 1
    assert f"{tmp_path}: error: is a directory, not a config file" in capsys.readouterr().err
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert main(["check", str(root), "--config", str(binary)]) == 1
    assert f"{binary}: error: cannot read the file" in capsys.readouterr().err
    # --config needs the truss directory, not a file.
    assert main(["check", str(root / "config.yaml"), "--config", str(binary)]) == 1
    assert "no such truss directory" in capsys.readouterr().err


def test_check_of_a_config_file_still_works(tmp_path: Path, capsys) -> None:
    root = make_truss(tmp_path / "truss")
    assert main(["check", str(root / "config.yaml")]) == 0
    assert f"{root / 'config.yaml'} is valid" in capsys.readouterr().out


def test_lock_path_follows_the_config(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "truss")
    assert lock_path(load_config(root)) == root / "pack.lock"
    assert lock_path(load_config(root / "config.yaml")) == root / "pack.lock"
    assert lock_path(load_config(root, config_file=root / "config.yaml")) == root / "pack.lock"
    beside = other_config(root / "other.yaml")
    assert lock_path(load_config(root, config_file=beside)) == root / "other.pack.lock"
    elsewhere = other_config(tmp_path / "cfg" / "gpu.yaml")
    assert lock_path(load_config(root, config_file=elsewhere)) == tmp_path / "cfg" / "gpu.pack.lock"


def test_lock_and_fetch_with_config_pin_that_configs_weights(hub_env, tmp_path: Path, capsys) -> None:
    hub_env.add_repo("acme/tiny").commit({"config.json": "{}", "weights.bin": b"w" * 1000})
    root = make_truss(tmp_path / "truss")
    other = other_config(tmp_path / "cfg" / "other.yaml", WEIGHTS)
    assert main(["lock", str(root), "--config", str(other)]) == 0
    assert f"wrote {tmp_path / 'cfg' / 'other.pack.lock'}" in capsys.readouterr().out
    assert not (root / "pack.lock").exists()  # config.yaml has no weights and is not touched
    lock = read_lock(tmp_path / "cfg" / "other.pack.lock")
    assert lock is not None and {e.source.path for e in lock.manifest.entries} == {"config.json", "weights.bin"}
    # The render takes its manifest from that lock, offline.
    hub_env.stop()
    plan, _ = api.render(root, tmp_path / "ctx", locked=True, config=other)
    assert plan.manifest == lock.manifest

    assert main(["fetch", str(root), "--dest", str(tmp_path / "w")]) == 1  # DIR/pack.lock: none
    assert f"{root / 'pack.lock'} does not exist" in capsys.readouterr().err


def test_fetch_with_config_downloads_that_lock(hub_env, tmp_path: Path, capsys) -> None:
    hub_env.add_repo("acme/tiny").commit({"config.json": "{}", "weights.bin": b"w" * 1000})
    root = make_truss(tmp_path / "truss")
    other = other_config(root / "other.yaml", WEIGHTS)
    assert main(["lock", str(root), "--config", str(other)]) == 0
    assert main(["fetch", str(root), "--config", str(other), "--dest", str(tmp_path / "w"),
                 "--cache-dir", str(tmp_path / "blobs")]) == 0
    assert (tmp_path / "w" / "tiny" / "weights.bin").read_bytes() == b"w" * 1000


def test_render_and_build_use_the_other_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from packager.engine import FakeEngine

    root = make_truss(tmp_path / "truss")
    other = other_config(root / "other.yaml")
    _, ctx = api.render(root, tmp_path / "ctx", config=other)
    image_config = yaml.safe_load((ctx.path / "app" / "config.yaml").read_text())
    assert image_config["model_name"] == "other-config"
    assert (ctx.path / "data" / "words.txt").is_file()  # data/ of DIR

    engine = FakeEngine()
    main_result = api.build(root, engine=engine)
    other_result = api.build(root, config=other, engine=engine)
    assert main_result.plan.model_name == "main-config" and other_result.plan.model_name == "other-config"
    # Each config builds in a context of its own (two configs can build side by side).
    assert main_result.context.path != other_result.context.path
    assert main(["build", str(root), "--config", str(other), "--json"], engine=engine) == 0
    assert engine.builds[-1].tag.startswith("other-config:")


def test_target_key_is_one_path_per_truss_and_config(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "truss")
    other = other_config(root / "other.yaml")
    assert resolve_target(root).key == resolve_target(root / "config.yaml").key == (root / "config.yaml").resolve()
    assert resolve_target(root, other).key == other.resolve()
    assert main(["check", str(tmp_path / "m.py"), "--config", str(other)]) == 1
