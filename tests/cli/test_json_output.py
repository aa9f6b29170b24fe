"""The machine contract CI scripts rely on: `pack build|push|check --json` print exactly one line on
stdout, valid against the documented schema (packager/cli/json_output.schema.json), on success and
on failure; the exit codes keep their documented meanings; CI=true never gets a live view.

The engine is the FakeEngine (no Docker): what is checked here is the contract, not the build
(tests/e2e/test_ci_cache.py builds for real on a second engine)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from packager import api
from packager.cli import json_results
from packager.cli.build_progress import LiveProgress, PlainProgress, make_progress
from packager.cli.main import main
from packager.engine import BuilderKind, BuiltImage, FakeEngine

BASE = "pack-base:bookworm-py311"
MODEL = "class Model:\n    def predict(self, x):\n        return x\n"
VALIDATOR = jsonschema.Draft202012Validator(json_results.schema_document())


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeEngine:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    fake = FakeEngine()
    fake.images[BASE] = BuiltImage("sha256:" + "b" * 64, (), 1)
    return fake


@pytest.fixture
def truss(tmp_path: Path) -> Path:
    root = tmp_path / "truss"
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.py").write_text(MODEL)
    (root / "config.yaml").write_text("model_name: json-contract\npython_version: py311\n")
    return root


def one_line(capsys: pytest.CaptureFixture[str], schema: str) -> dict:
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 1, f"--json printed {len(lines)} lines on stdout:\n{out}"
    doc = json.loads(lines[0])
    VALIDATOR.validate(doc)
    assert doc["schema"] == schema
    return doc


def test_the_schema_document_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json_results.schema_document())


def test_build_json_is_one_valid_line_with_the_cache_it_used(engine, truss, capsys) -> None:
    code = main(["build", str(truss), "--base-image", BASE, "--json", "--cache-from", "registry.local/m:main",
                 "--cache-from", "registry.local/m:pr-7"], engine=engine)
    assert code == json_results.EXIT_OK
    doc = one_line(capsys, json_results.BUILD)
    assert doc["ok"] is True and doc["image_id"] == engine.builds[-1].image.id
    assert doc["cache"]["mode"] == "inline" and doc["cache"]["to"] is None
    assert doc["cache"]["from"] == ["registry.local/m:main", "registry.local/m:pr-7"]
    assert doc["weights_mode"] == "none" and doc["weight_bytes_fetched"] == 0 and doc["weight_steps_run"] == 0
    assert doc["labels"]["dev.pack.model-name"] == "json-contract"
    assert doc["labels"]["dev.pack.context-digest"] == doc["context_digest"]
    # What the engine was asked for is what the line says.
    assert engine.builds[-1].image.cache == api.LayerCache(("registry.local/m:main", "registry.local/m:pr-7"))


def test_no_inline_cache_is_said(engine, truss, capsys) -> None:
    assert main(["build", str(truss), "--base-image", BASE, "--json", "--no-inline-cache"], engine=engine) == 0
    assert one_line(capsys, json_results.BUILD)["cache"] == {"mode": "none", "from": [], "to": None, "unavailable": []}


def test_a_registry_cache_export_needs_buildx_and_the_failure_is_a_json_line(engine, truss, capsys) -> None:
    engine.builder = BuilderKind.BUILDKIT_CLI  # Debian's Docker 20.10 CLI: BuildKit without buildx
    code = main(["build", str(truss), "--base-image", BASE, "--json", "--cache-to", "registry.local/m:cache"],
                engine=engine)
    assert code == json_results.EXIT_USER_ERROR
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    VALIDATOR.validate(doc)
    assert doc["ok"] is False and doc["schema"] == json_results.BUILD
    assert "registry cache" in doc["error"]["message"] and "--cache-from" in doc["error"]["hint"]
    assert doc["error"]["exit_code"] == code
    assert "error:" in captured.err  # the person reading the log sees it too


def test_push_json_carries_the_digest_and_the_build(engine, truss, capsys) -> None:
    code = main(["push", str(truss), "--base-image", BASE, "--image", "registry.local/team/model:abc123", "--json",
                 "--cache-from", "registry.local/team/model:main"], engine=engine)
    assert code == 0, capsys.readouterr().err
    doc = one_line(capsys, json_results.PUSH)
    assert doc["image"] == "registry.local/team/model:abc123"
    assert doc["pinned"] == f"registry.local/team/model@{doc['digest']}"
    assert doc["cache"]["mode"] == "inline" and doc["cache"]["from"] == ["registry.local/team/model:main"]


def test_push_without_the_cache(engine, truss, capsys) -> None:
    assert main(["push", str(truss), "--base-image", BASE, "--image", "registry.local/m:1", "--json",
                 "--no-push-cache"], engine=engine) == 0
    assert one_line(capsys, json_results.PUSH)["cache"]["mode"] == "none"


def test_check_json_valid_and_invalid(truss, capsys) -> None:
    assert main(["check", str(truss), "--json"]) == 0
    assert one_line(capsys, json_results.CHECK)["valid"] is True
    (truss / "config.yaml").write_text("model_name: x\nresources:\n  cpu: [1]\n")
    assert main(["check", str(truss), "--json"]) == json_results.EXIT_USER_ERROR
    doc = one_line(capsys, json_results.CHECK)
    assert doc["valid"] is False and doc["ok"] is False and doc["errors"][0]["path"].startswith("resources")


def test_a_missing_truss_is_a_user_error_in_the_contract(engine, tmp_path, capsys) -> None:
    code = main(["build", str(tmp_path / "nowhere"), "--json"], engine=engine)
    assert code == json_results.EXIT_USER_ERROR
    doc = json.loads(capsys.readouterr().out)
    VALIDATOR.validate(doc)
    assert doc["ok"] is False and "nowhere" in doc["error"]["message"]


def test_usage_errors_exit_2(engine, truss, capsys) -> None:
    assert main(["build", str(truss), "--no-such-flag"], engine=engine) == json_results.EXIT_USAGE
    assert main(["push", str(truss)], engine=engine) == json_results.EXIT_USAGE  # --image missing
    assert "--image" in capsys.readouterr().err


def test_an_internal_fault_exits_70_and_says_so_in_the_contract(engine, truss, capsys, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(api, "build", broken)
    assert main(["build", str(truss), "--json"], engine=engine) == json_results.EXIT_INTERNAL
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    VALIDATOR.validate(doc)
    assert doc["error"]["exit_code"] == json_results.EXIT_INTERNAL and "RuntimeError: a bug" in doc["error"]["message"]
    assert "Traceback" not in captured.err


def test_an_interrupt_exits_130(engine, truss, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "build", interrupted)
    assert main(["build", str(truss)], engine=engine) == json_results.EXIT_INTERRUPTED


@pytest.mark.parametrize(("ci", "live"), [("true", False), ("1", False), ("", True), ("false", True)])
def test_ci_true_never_gets_a_live_view_even_in_a_terminal(monkeypatch, ci, live) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # what a runner's pseudo-terminal looks like to pack
    monkeypatch.setenv("CI", ci)
    view = make_progress("auto")
    try:
        assert isinstance(view, LiveProgress if live else PlainProgress)
    finally:
        if view is not None:
            view.close()


def test_a_registry_cache_export_where_buildx_is(engine, truss, capsys) -> None:
    assert engine.builder is BuilderKind.BUILDX
    assert main(["build", str(truss), "--base-image", BASE, "--json", "--cache-to", "registry.local/m:cache"],
                engine=engine) == 0
    cache = one_line(capsys, json_results.BUILD)["cache"]
    assert cache == {"mode": "registry", "from": [], "to": "registry.local/m:cache", "unavailable": []}


def test_a_cache_reference_the_registry_lacks_is_reported_not_hidden(engine, truss, capsys) -> None:
    engine.registry["registry.local/m:main"] = engine.images[BASE]  # one of the two exists
    assert main(["build", str(truss), "--base-image", BASE, "--json", "--cache-from", "registry.local/m:main",
                 "--cache-from", "registry.local/m:gone"], engine=engine) == 0
    doc = one_line(capsys, json_results.BUILD)
    assert doc["cache"]["unavailable"] == [{"ref": "registry.local/m:gone", "reason": "not found"}]
    assert any("--cache-from registry.local/m:gone not used: not found" in w for w in doc["warnings"])


def test_build_takes_a_login_for_its_cache_registries_from_stdin(engine, truss, capsys, monkeypatch) -> None:
    engine.builder = BuilderKind.BUILDX  # --cache-to needs it
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-password\n"))
    assert main(["build", str(truss), "--base-image", BASE, "--json", "--cache-from", "registry.local/m:main",
                 "--cache-to", "other.local:5000/m:cache", "--username", "ci", "--password-stdin"],
                engine=engine) == 0
    captured = capsys.readouterr()
    assert engine.builds[-1].login_registries == ("other.local:5000", "registry.local")
    assert "s3cret-password" not in captured.out + captured.err
