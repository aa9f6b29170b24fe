"""`pack deploy render` and `pack chains deploy render` over the API: files, JSON, errors."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from packager.cli.main import main

from . import schemas
from .conftest import IMAGE


def test_deploy_render_writes_validated_files_and_reports_them(truss, tmp_path: Path, capsys):
    out = tmp_path / "manifests"
    code = main(["deploy", "render", str(truss("volume")), "--target", "k8s", "--image", IMAGE, "-o", str(out),
                 "--min-replicas", "1", "--max-replicas", "4", "--namespace", "models", "--locked", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["target"] == "k8s" and report["files"] == ["00-volume-model.yaml"]
    assert report["resources"] == ["Deployment/volume-model", "Service/volume-model",
                                   "HorizontalPodAutoscaler/volume-model"]
    docs = list(yaml.safe_load_all((out / "00-volume-model.yaml").read_text()))
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    for doc in docs:
        schemas.validate(doc)
        assert doc["metadata"]["namespace"] == "models"
    assert any("volume-model-secrets" in note for note in report["notes"])


def test_chains_deploy_render(chain_file: Path, tmp_path: Path, capsys):
    out = tmp_path / "chain-manifests"
    code = main(["chains", "deploy", "render", str(chain_file), "--target", "knative", "--registry",
                 "r.example/team", "--tag", "v3", "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sorted(p.name for p in out.iterdir()) == ["00-deploy-chain-chain-config.yaml",
                                                     "01-deploy-chain-embedder.yaml", "02-deploy-chain-front.yaml"]
    assert "kubectl apply -f" in captured.out
    assert "kubernetes.podspec-volumes-hostpath: enabled" in captured.err  # what the cluster must allow


def test_unknown_target_and_bad_image(truss, tmp_path: Path, capsys):
    root = str(truss("none"))
    assert main(["deploy", "render", root, "--target", "nomad", "--image", IMAGE, "-o", str(tmp_path / "o")]) == 1
    assert "unknown deploy target `nomad`" in capsys.readouterr().err
    assert main(["deploy", "render", root, "--target", "k8s", "--image", "Bad Ref", "-o", str(tmp_path / "o")]) == 1
    assert "invalid image reference" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_help_lists_deploy_after_push(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "deploy" in text
    assert main(["chains", "--help"]) == 0
    assert "deploy" in capsys.readouterr().out
