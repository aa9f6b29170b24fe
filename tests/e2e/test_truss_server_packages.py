"""Truss's implicit server packages, end to end with a real engine and real pip (PyPI through the
machine's proxy).

- A truss whose model.py imports fastapi, pydantic, requests and yaml with `requirements: []`
  builds, starts and answers; the packages come at Truss's bounds; `pack check` lists them.
- The same truss built without the decision (the plan's server_packages emptied, as pack was
  before) dies at start, and its log names the module, the line and the fix.
- A truss importing none of them gets no extra layer: its image is the baseline image, same id and
  same size, and smaller than the one that needed the packages.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from packager import api, runner
from packager.builder import BuildResult, build_image
from packager.errors import EngineError
from packager.plan.model import BuildOptions
from packager.plan.truss_server_packages import ServerPackages
from tests.e2e.conftest import BASE_IMAGE, Resources, build, exec_in, pack_cli, start

pytestmark = pytest.mark.docker

IMPORTING = """\
import fastapi
import pydantic
import requests
import yaml
from fastapi.encoders import jsonable_encoder


class Item(pydantic.BaseModel):
    text: str
    count: int = 1


class Model:
    def predict(self, model_input):
        item = Item(**model_input)
        prepared = requests.Request("GET", "http://example.invalid/x", params={"q": item.text}).prepare()
        return {
            "item": jsonable_encoder(item),
            "yaml": yaml.safe_dump({"text": item.text, "count": item.count}, sort_keys=True),
            "url": prepared.url,
            "versions": {"fastapi": fastapi.__version__, "pydantic": pydantic.VERSION,
                         "requests": requests.__version__, "yaml": yaml.__version__},
        }
"""
PLAIN = """\
import json


class Model:
    def predict(self, model_input):
        return json.loads(json.dumps(model_input))
"""


def _truss(root: Path, name: str, model: str) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text(f"model_name: {name}\npython_version: py311\nrequirements: []\n")
    (root / "model" / "model.py").write_text(model)
    return root


def _without_the_decision(truss_dir: Path, tag: str) -> BuildResult:
    """The truss built as pack built it before: the same plan with server_packages emptied."""
    _, plan = api.plan(truss_dir, BuildOptions(base_image=BASE_IMAGE))
    return build_image(dataclasses.replace(plan, server_packages=ServerPackages()), tag=tag)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2])


@dataclass
class Built:
    importing: BuildResult
    importing_baseline: BuildResult
    plain: BuildResult
    plain_baseline: BuildResult
    truss: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, e2e_env: pytest.MonkeyPatch,
          resources: Resources) -> Iterator[Built]:
    base = tmp_path_factory.mktemp("server-packages")
    importing = _truss(base / "importing", "e2e-server-packages", IMPORTING)
    plain = _truss(base / "plain", "e2e-server-packages-plain", PLAIN)
    yield Built(
        importing=build(importing, resources.tag("server-packages")),
        importing_baseline=_without_the_decision(importing, resources.tag("server-packages-baseline")),
        plain=build(plain, resources.tag("server-packages-plain")),
        plain_baseline=_without_the_decision(plain, resources.tag("server-packages-plain-baseline")),
        truss=importing,
    )


def test_the_importing_truss_builds_starts_and_answers(built: Built, resources: Resources, docker_client: Any) -> None:
    result = built.importing
    assert result.plan.server_packages.requirement_lines == (
        "fastapi>=0.114,<0.125.0", "pyyaml>=6.0.0", "requests>=2.31.0")
    running = start(result, result.plan, resources)
    try:
        answer = runner.predict(running.url, {"text": "a b", "count": 2}, timeout=60)
        assert answer["item"] == {"text": "a b", "count": 2}
        assert answer["yaml"] == "count: 2\ntext: a b\n"
        assert answer["url"] == "http://example.invalid/x?q=a+b"
        versions = answer["versions"]
        # Truss's bounds held: fastapi below 0.125, requests and pyyaml at least Truss's floors.
        assert (0, 114) <= _version(versions["fastapi"]) < (0, 125)
        assert _version(versions["requests"]) >= (2, 31) and _version(versions["yaml"]) >= (6, 0)
        assert _version(versions["pydantic"]) >= (2, 0)
        # The packages sit in their own layer's files, the user's (empty) requirements on top.
        listed = exec_in(docker_client, running.container.name, ["cat", "/opt/pack/truss-server/requirements.txt"])
        assert listed == "fastapi>=0.114,<0.125.0\npyyaml>=6.0.0\nrequests>=2.31.0\n"
    finally:
        running.container.remove()


def test_pack_check_lists_the_added_packages(built: Built) -> None:
    text = pack_cli("check", str(built.truss))
    assert text.returncode == 0, text.stderr
    for line in ("fastapi>=0.114,<0.125.0  <- model/model.py:1 `fastapi`, model/model.py:2 `pydantic`",
                 "requests>=2.31.0  <- model/model.py:3 `requests`", "pyyaml>=6.0.0  <- model/model.py:4 `yaml`"):
        assert line in text.stdout, text.stdout
    as_json = pack_cli("check", str(built.truss), "--json")
    assert as_json.returncode == 0, as_json.stderr
    added = json.loads(as_json.stdout)["truss_server_packages"]["packages"]
    assert [p["distribution"] for p in added] == ["fastapi", "pyyaml", "requests"]


def test_without_the_packages_the_start_names_module_line_and_fix(built: Built, resources: Resources) -> None:
    result = built.importing_baseline
    with pytest.raises(EngineError) as info:
        start(result, result.plan, resources, timeout=120)
    message = info.value.message
    assert "ModuleNotFoundError: No module named 'fastapi'" in message, message
    assert "missing module `fastapi`, imported at /app/model/model.py:1: import fastapi" in message, message
    assert "fix: add `fastapi` to `requirements` in config.yaml" in message, message


def test_a_truss_importing_none_gets_no_layer_and_no_bytes(built: Built, docker_client: Any) -> None:
    plain, baseline = built.plain, built.plain_baseline
    assert plain.plan.server_packages == ServerPackages()
    history = json.dumps(docker_client.api.history(plain.image.id))
    assert "truss-server" not in history
    layers = [docker_client.api.inspect_image(i.id)["RootFS"]["Layers"] for i in (plain.image, baseline.image)]
    assert layers[0] == layers[1] and plain.image.size == baseline.image.size
    # The layer is what the importing truss pays for its imports, and only it does.
    assert "truss-server" in json.dumps(docker_client.api.history(built.importing.image.id))
    assert built.importing.image.size > built.importing_baseline.image.size
    assert built.importing.image.size > plain.image.size
