"""deploy.yaml: read beside config.yaml; every mistake names the file, the field (with its line)
and the fix, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager import api
from packager.deploy.settings import DEPLOY_FILENAME, deploy_settings, load_deploy_file
from packager.errors import ConfigError

from .conftest import IMAGE, by_kind, validated


def problems(tmp_path: Path, text: str) -> list:
    path = tmp_path / DEPLOY_FILENAME
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_deploy_file(path)
    for problem in caught.value.problems:
        assert problem.file == str(path)
        assert problem.hint
    return caught.value.problems


def test_unknown_key_suggests_the_close_one(tmp_path: Path):
    [problem] = problems(tmp_path, "min_replicas: 1\nmax_replica: 3\n")
    assert (problem.path, problem.line, problem.column) == ("max_replica", 2, 1)
    assert problem.message == "unknown key `max_replica` at the top level"
    assert problem.hint == "did you mean `max_replicas`?"


def test_unknown_key_in_a_section_and_in_a_chainlet(tmp_path: Path):
    found = problems(tmp_path, "weights_cache:\n  prewarn: true\nchainlets:\n  Embedder:\n    min_replica: 1\n")
    assert {(p.path, p.hint) for p in found} == {
        ("weights_cache.prewarn", "did you mean `prewarm`?"),
        ("chainlets.Embedder.min_replica", "did you mean `min_replicas`?"),
    }


def test_wrong_types_and_ranges_all_at_once(tmp_path: Path):
    found = problems(tmp_path, "min_replicas: -1\nmax_replicas: many\nscaledown_window: 1.5\n"
                               "weights_cache: {kind: nfs}\n")
    by_path = {p.path: p for p in found}
    assert set(by_path) == {"min_replicas", "max_replicas", "scaledown_window", "weights_cache.kind"}
    assert by_path["max_replicas"].line == 2
    assert "hostPath" in by_path["weights_cache.kind"].hint


def test_rules_land_on_the_field_they_are_about(tmp_path: Path):
    [problem] = problems(tmp_path, "min_replicas: 5\nmax_replicas: 2\n")
    assert problem.path == "min_replicas" and problem.line == 1
    assert "above max_replicas 2" in problem.message
    [problem] = problems(tmp_path, "weights_cache:\n  kind: pvc\n")
    assert problem.path == "weights_cache.claim"
    assert "add `claim: NAME`" in problem.hint
    [problem] = problems(tmp_path, "weights_cache:\n  path: relative/dir\n")
    assert problem.path == "weights_cache.path" and problem.line == 2


def test_invalid_kubernetes_names(tmp_path: Path):
    found = problems(tmp_path, "namespace: My_NS\nimage_pull_secrets: [ok, Not_OK]\n")
    assert {p.path for p in found} == {"namespace", "image_pull_secrets[1]"}


def test_yaml_syntax_and_duplicates(tmp_path: Path):
    [problem] = problems(tmp_path, "min_replicas: [1\n")
    assert problem.message.startswith("YAML syntax error")
    [problem] = problems(tmp_path, "min_replicas: 1\nmin_replicas: 2\n")
    assert problem.line == 2 and "duplicate key" in problem.message


def test_deploy_yaml_beside_config_yaml_is_read(truss):
    root = truss("none")
    (root / DEPLOY_FILENAME).write_text("namespace: models\nmin_replicas: 2\n")
    settings = deploy_settings(root)
    assert (settings.namespace, settings.warm_pool.min_replicas) == ("models", 2)
    deployment, _ = api.deploy_manifests(root, target="k8s", image=IMAGE)
    resources = validated(deployment)
    assert {r["metadata"]["namespace"] for r in resources} == {"models"}
    assert by_kind(resources, "Deployment")[0]["spec"]["replicas"] == 2


def test_bad_deploy_yaml_reaches_the_cli_as_file_field_and_fix(truss, capsys):
    from packager.cli.main import main

    root = truss("none")
    (root / DEPLOY_FILENAME).write_text("min_replicas: 1\nbufer_replicas: 2\n")
    code = main(["deploy", "render", str(root), "--target", "k8s", "--image", IMAGE, "-o", str(root.parent / "o")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{root / DEPLOY_FILENAME}:2:1: error: bufer_replicas: unknown key" in err
    assert "did you mean `buffer_replicas`?" in err
    assert "Traceback" not in err


def test_missing_deploy_file_flag(truss, tmp_path: Path):
    with pytest.raises(ConfigError) as caught:
        api.deploy_manifests(truss("none"), target="k8s", image=IMAGE, deploy_file=tmp_path / "nope.yaml")
    assert caught.value.problems[0].message == "no such deploy file"


def test_config_yaml_stays_trusss(truss):
    """Deploy settings never go into config.yaml: pack check rejects them there as unknown keys."""
    root = truss("none")
    (root / "config.yaml").write_text("model_name: plain\nmin_replicas: 1\n")
    with pytest.raises(ConfigError) as caught:
        api.check(root)
    assert caught.value.problems[0].path == "min_replicas"
