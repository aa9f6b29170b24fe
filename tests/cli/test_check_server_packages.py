"""`pack check` lists the Truss server packages the image will get (information, exit 0)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODEL = """\
import fastapi
import pydantic
import requests
import yaml
try:
    import uvloop
except ImportError:
    uvloop = None


class Model:
    def predict(self, x):
        return x
"""


def pack(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "packager.cli.main", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def _truss(root: Path, config: str, model: str = MODEL) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text(config)
    (root / "model" / "model.py").write_text(model)
    return root


def test_check_lists_what_it_adds_in_text(tmp_path: Path) -> None:
    root = _truss(tmp_path / "t", "model_name: t\nrequirements: []\n")
    result = pack("check", str(root))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "adds 4 of Truss's server packages" in out and "Truss 0.18.30" in out
    assert "fastapi>=0.114,<0.125.0  <- model/model.py:1 `fastapi`, model/model.py:2 `pydantic`" in out
    assert "requests>=2.31.0  <- model/model.py:3 `requests`" in out
    assert "pyyaml>=6.0.0  <- model/model.py:4 `yaml`" in out
    assert "uvloop>=0.19.0  <- model/model.py:6 `uvloop` (every import guarded by `except ImportError`)" in out
    assert "list the package in `requirements` in config.yaml" in out
    assert "is valid" in out


def test_check_json_lists_them_and_user_pins_win(tmp_path: Path) -> None:
    root = _truss(tmp_path / "t", "model_name: t\nrequirements:\n  - PyYAML==6.0.2\n  - fastapi\n")
    result = pack("check", str(root), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    added = report["truss_server_packages"]
    assert report["valid"] is True and added["truss_version"] == "0.18.30"
    assert [(p["distribution"], p["requirement"], p["optional"]) for p in added["packages"]] == [
        ("requests", "requests>=2.31.0", False), ("uvloop", "uvloop>=0.19.0", True)]
    assert added["packages"][0]["imports"] == [{"module": "requests", "file": "model/model.py", "line": 3,
                                                "guarded": False}]


def test_check_says_nothing_when_nothing_is_added(tmp_path: Path) -> None:
    root = _truss(tmp_path / "t", "model_name: t\n",
                  "import json\n\nclass Model:\n    def predict(self, x):\n        return x\n")
    result = pack("check", str(root))
    assert result.returncode == 0 and "Truss's server packages" not in result.stdout + result.stderr
    report = json.loads(pack("check", str(root), "--json").stdout)
    assert report["truss_server_packages"]["packages"] == []
