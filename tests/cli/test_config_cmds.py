"""The config-stage commands as a user runs them: real processes, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p.parent for p in (REPO / "sample_trusses").glob("*/config.yaml"))


def pack(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "packager.cli.main", *args], capture_output=True,
                          text=True, cwd=cwd or REPO, timeout=120)


def test_samples_exist() -> None:
    names = {p.name for p in SAMPLES}
    assert {"echo", "docker-server", "minilm-volume", "minilm-bake"} <= names


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_sample_passes_check(sample: Path) -> None:
    result = pack("check", str(sample))
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout


def test_check_reports_every_error_with_position_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.py").write_text("class Model: pass\n")
    (tmp_path / "config.yaml").write_text(
        "runtime:\n  predict_concurency: 2\nresources:\n  memory: 2GB\n")
    result = pack("check", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{tmp_path}/config.yaml:2:3: error: runtime.predict_concurency: unknown key" in result.stderr
    assert "did you mean `predict_concurrency`?" in result.stderr
    assert f"{tmp_path}/config.yaml:4:11: error: resources.memory: invalid memory unit `GB` in `2GB`" in result.stderr
    assert "2 errors in config" in result.stderr


def test_check_json_and_unknown_key_flag(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.py").write_text("class Model: pass\n")
    (tmp_path / "config.yaml").write_text("model_name: x\nnew_truss_key: 1\n")
    strict = pack("check", str(tmp_path), "--json")
    assert strict.returncode == 1
    report = json.loads(strict.stdout)
    assert report["valid"] is False
    assert report["errors"][0]["path"] == "new_truss_key" and report["errors"][0]["line"] == 2
    lenient = pack("check", str(tmp_path), "--json", "--allow-unknown-keys")
    assert lenient.returncode == 0
    assert json.loads(lenient.stdout)["warnings"][0]["severity"] == "warning"


def test_yaml_syntax_error_points_at_line(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("model_name: x\nrequirements: [a\nsecrets: {}\n")
    result = pack("check", str(tmp_path))
    assert result.returncode == 1
    assert f"{tmp_path}/config.yaml:3:" in result.stderr and "YAML syntax error" in result.stderr


def test_missing_dir_and_yml_hint(tmp_path: Path) -> None:
    missing = pack("check", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "no such truss directory" in missing.stderr
    (tmp_path / "config.yml").write_text("model_name: x\n")
    yml = pack("check", str(tmp_path))
    assert yml.returncode == 1 and "rename it" in yml.stderr
    assert "Traceback" not in missing.stderr + yml.stderr


def test_config_prints_resolved_yaml_and_json() -> None:
    as_yaml = pack("config", str(REPO / "sample_trusses" / "echo"))
    assert as_yaml.returncode == 0, as_yaml.stderr
    data = yaml.safe_load(as_yaml.stdout)
    assert data["model_name"] == "echo" and data["runtime"]["predict_concurrency"] == 2
    assert data["resources"]["use_gpu"] is False and data["spec_version"] == "2.0"
    as_json = pack("config", str(REPO / "sample_trusses" / "echo"), "--json")
    assert json.loads(as_json.stdout) == data


def test_config_never_prints_a_literal_secret(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.py").write_text("class Model: pass\n")
    (tmp_path / "config.yaml").write_text("secrets:\n  hf_access_token: hf_SuperSecretValue123\n")
    result = pack("config", str(tmp_path), "--json")
    assert result.returncode == 0
    assert "hf_SuperSecretValue123" not in result.stdout + result.stderr
    assert json.loads(result.stdout)["secrets"] == {"hf_access_token": None}
    assert "secrets.hf_access_token" in result.stderr  # the warning names the field


def test_schema_describes_every_top_level_key() -> None:
    result = pack("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    for key in ("model_cache", "docker_server", "resources", "runtime", "trt_llm", "hf_cache"):
        assert key in schema["properties"], key
    assert schema["additionalProperties"] is False


def test_init_creates_a_truss_that_passes_check(tmp_path: Path) -> None:
    target = tmp_path / "my model"
    created = pack("init", str(target))
    assert created.returncode == 0, created.stderr
    assert (target / "model" / "model.py").is_file()
    assert yaml.safe_load((target / "config.yaml").read_text())["model_name"] == "my-model"
    assert pack("check", str(target)).returncode == 0
    again = pack("init", str(target))
    assert again.returncode == 1 and "already exists" in again.stderr
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []
