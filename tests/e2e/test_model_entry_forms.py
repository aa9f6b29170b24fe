"""How users point pack at their model, with a real engine and real HTTP:

* a ModelBase file (sample_trusses/model-base/echo_model.py) builds FROM the offline base image,
  runs and answers a prediction at Truss's model route;
* `pack build DIR --base-image X` then `pack run DIR` with no --base-image builds FROM X again
  (the default base cannot be pulled offline) and answers.

Both drive the CLI in this process (packager.cli.main.main) so the weight-cache volume gets a
unique name; every tag, container and volume they create is removed by the module's Resources.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from packager.cli.main import main
from tests.e2e.conftest import BASE_IMAGE, Resources, free_port, unique

pytestmark = pytest.mark.docker
READY = re.compile(r"✓ (\S+) is ready at (http://127\.0\.0\.1:\d+)")


@pytest.fixture
def cli(e2e_env: pytest.MonkeyPatch, resources: Resources, monkeypatch: pytest.MonkeyPatch, capsys):
    """main(argv) -> (exit code, stdout); a `run` gets a unique container and weight volume, and
    the tag it builds is registered for removal."""
    volume = unique("pack-e2e-weights")
    resources.volumes.append(volume)

    def call(*argv: str) -> tuple[int, str, str]:
        extra: list[str] = []
        if argv[0] == "run":
            name = unique("pack-e2e-run")
            resources.containers.append(name)
            extra = ["--name", name, "--port", str(free_port()), "--detach", "--timeout", "300",
                     "--progress", "plain", "--cache-volume", volume]
        code = main([*argv, *extra])
        out, err = capsys.readouterr()
        if match := READY.search(out):
            resources.tags.append(match.group(1))
        return code, out, err
    return call


def predict(url: str, body: dict) -> object:
    request = urllib.request.Request(f"{url}/v1/models/model:predict", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def echo_model(samples: Path) -> Iterator[Path]:
    """The sample ModelBase file under a unique model name (tags and names stay unique)."""
    source = samples / "model-base" / "echo_model.py"
    source.write_text(source.read_text().replace('name="echo-model"', f'name="{unique("e2e-echo")}"'))
    yield source
    from chains.framework import registry

    sys.modules.pop("echo_model", None)
    registry.by_name.pop("EchoModel", None)
    for cls in [c for c in registry.descriptors if c.__name__ == "EchoModel"]:
        del registry.descriptors[cls]


def test_model_base_file_builds_runs_and_answers(cli, resources: Resources, echo_model: Path) -> None:
    tag = resources.tag("modelbase")
    code, out, err = cli("build", str(echo_model), "--base-image", BASE_IMAGE, "-t", tag, "--json")
    assert code == 0, err
    built = json.loads(out)
    assert built["tag"] == tag

    code, out, err = cli("run", str(echo_model))
    assert code == 0, err
    assert f"building FROM {BASE_IMAGE}, the --base-image of the last build of {echo_model}" in err
    url = READY.search(out).group(2)
    assert predict(url, {"text": "hello", "times": 2}) == ["echo: hello", "echo: hello"]
    assert predict(url, {"text": "once"}) == ["echo: once"]  # the Python default applies


def test_run_after_build_with_base_image_reuses_it(cli, resources: Resources, samples: Path) -> None:
    root = samples / "echo"
    config = root / "config.yaml"
    config.write_text(re.sub(r"(?m)^model_name: .*$", f"model_name: {unique('e2e-reuse')}", config.read_text()))
    code, out, err = cli("build", str(root), "--base-image", BASE_IMAGE, "-t", resources.tag("reuse"), "--json")
    assert code == 0, err

    code, out, err = cli("run", str(root))  # no --base-image
    assert code == 0, err
    assert f"building FROM {BASE_IMAGE}, the --base-image of the last build of {root}" in err
    assert "python:3" not in err  # the default base was never asked for
    url = READY.search(out).group(2)
    assert predict(url, {"text": "hello"})["echo"] == {"text": "hello"}
