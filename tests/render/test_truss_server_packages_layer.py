"""Truss's server packages in the Dockerfile: their own cached pip layer, only when the code
imports some, after pack's server layer and before the user's requirements (which then win)."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

from packager import api
from packager.plan.model import BuildOptions
from packager.plan.truss_server_packages import ServerPackages
from packager.render import render_context

from .dockerfile import final_stage, index_of, parse

IMPORTS = """\
    import fastapi
    import pydantic
    import requests
    import yaml


    class Model:
        def predict(self, x):
            return {"ok": True}
    """
PLAIN = """\
    import json


    class Model:
        def predict(self, x):
            return json.loads(json.dumps(x))
    """


def _truss(root: Path, config: str, model: str) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text(textwrap.dedent(config))
    (root / "model" / "model.py").write_text(textwrap.dedent(model))
    return root


def _render(root: Path, out: Path):
    return api.render(root, out, BuildOptions(base_image="pack-base:bookworm-py311"))


def test_the_layer_comes_before_the_user_requirements_with_truss_bounds(tmp_path: Path) -> None:
    root = _truss(tmp_path / "t", "model_name: t\nrequirements:\n  - requests==2.32.3\n  - numpy\n", IMPORTS)
    plan, ctx = _render(root, tmp_path / "ctx")
    final = final_stage(parse((ctx.path / "Dockerfile").read_text()))
    pack_server = index_of(final, r"pack-installer/install -r /opt/pack/server-requirements.txt")
    copy = index_of(final, r"^COPY pack/truss-server /opt/pack/truss-server$")
    install = index_of(final, r"pack-installer/install -r /opt/pack/truss-server/requirements.txt "
                              r"-c /opt/pack/truss-server/constraints.txt$")
    user = index_of(final, r"pack-installer/install -r /opt/pack/requirements.txt")
    assert 0 < pack_server < copy < install < user, [str(i) for i in final]
    assert final[install].flags == ["--mount=type=cache,id=pack-pip,target=/root/.cache/pip",
                                    "--mount=type=cache,id=pack-uv,target=/root/.cache/uv",
                                    "--mount=type=bind,source=pack/installer,target=/opt/pack-installer"]
    # requests is the user's own pin; the rest come at Truss's bounds.
    assert (ctx.path / "pack" / "truss-server" / "requirements.txt").read_text() == \
        "fastapi>=0.114,<0.125.0\npyyaml>=6.0.0\n"
    assert (ctx.path / "pack" / "truss-server" / "constraints.txt").read_text() == \
        "fastapi>=0.114,<0.136.0\npyyaml>=6.0.0\n"
    assert (ctx.path / "pack" / "requirements.txt").read_text() == "requests==2.32.3\nnumpy\n"
    assert plan.server_packages.requirement_lines == ("fastapi>=0.114,<0.125.0", "pyyaml>=6.0.0")
    assert any("fastapi>=0.114,<0.125.0" in n for n in ctx.notes)


def test_the_layer_precedes_a_uv_lock_install_too(tmp_path: Path) -> None:
    root = _truss(tmp_path / "t", "model_name: t\nrequirements_file: uv.lock\n", IMPORTS)
    (root / "pyproject.toml").write_text('[project]\nname = "t"\nversion = "0"\ndependencies = ["fastapi"]\n')
    (root / "uv.lock").write_text('version = 1\n[[package]]\nname = "fastapi"\nversion = "0.115.0"\n'
                                  '[[package]]\nname = "pydantic"\nversion = "2.9.0"\n')
    plan, ctx = _render(root, tmp_path / "ctx")
    final = final_stage(parse((ctx.path / "Dockerfile").read_text()))
    assert plan.server_packages.requirement_lines == ("pyyaml>=6.0.0", "requests>=2.31.0")
    assert 0 < index_of(final, r"/opt/pack/truss-server/requirements.txt") < index_of(final, r"uv export")


def test_a_truss_importing_none_renders_exactly_as_without_the_feature(tmp_path: Path) -> None:
    root = _truss(tmp_path / "t", "model_name: t\nrequirements: [numpy]\n", PLAIN)
    plan, ctx = _render(root, tmp_path / "ctx")
    assert plan.server_packages == ServerPackages()
    text = (ctx.path / "Dockerfile").read_text()
    assert "truss-server" not in text and not (ctx.path / "pack" / "truss-server").exists()
    # The same plan with the decision taken out renders byte for byte the same context.
    baseline = render_context(dataclasses.replace(plan, server_packages=ServerPackages()), tmp_path / "base")
    assert baseline.digest == ctx.digest


def test_only_the_packages_layer_differs_when_the_code_imports_them(tmp_path: Path) -> None:
    root = _truss(tmp_path / "t", "model_name: t\n", IMPORTS)
    plan, ctx = _render(root, tmp_path / "ctx")
    without = render_context(dataclasses.replace(plan, server_packages=ServerPackages()), tmp_path / "base")
    with_layer = [str(i) for i in parse((ctx.path / "Dockerfile").read_text())]
    baseline = [str(i) for i in parse((without.path / "Dockerfile").read_text())]
    extra = [i for i in with_layer if i not in baseline]
    assert len(extra) == 2 and extra[0].startswith("COPY pack/truss-server") and "truss-server" in extra[1]
    assert [i for i in with_layer if i in baseline] == baseline


def test_docker_server_trusses_get_none(tmp_path: Path) -> None:
    root = _truss(tmp_path / "t", """\
        model_name: t
        docker_server:
          start_command: python3 -m http.server 8000
          server_port: 8000
          predict_endpoint: /predict
          readiness_endpoint: /
          liveness_endpoint: /
        """, IMPORTS)
    plan, ctx = _render(root, tmp_path / "ctx")
    assert plan.server_packages == ServerPackages()
    assert "truss-server" not in (ctx.path / "Dockerfile").read_text()
