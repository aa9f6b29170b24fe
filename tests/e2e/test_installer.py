"""Requirements installed by uv, bound into the build: the image has the packages, compiled, and
neither uv nor the installer (55 MB) is a file of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from packager.render.context import INSTALLER_MOUNT
from tests.e2e.conftest import Resources, build


def sh(client: Any, image: str, script: str) -> str:
    out = client.containers.run(image, ["-c", script], entrypoint="sh", remove=True, network_mode="host")
    return str(out.decode())

pytestmark = pytest.mark.docker


def test_requirements_come_from_uv_and_uv_stays_out(tmp_path: Path, resources: Resources, docker_client: Any,
                                                     base_image: str) -> None:
    root = tmp_path / "t"
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text("model_name: installer\nrequirements:\n  - six==1.16.0\n")
    (root / "model" / "model.py").write_text("import six\n\nclass Model:\n    def predict(self, x):\n"
                                             "        return six.__version__\n")
    result = build(root, resources.tag("installer"))
    out = sh(docker_client, result.tag,
             f"python3 -c 'import six; print(six.__version__)'; ls -A {INSTALLER_MOUNT} 2>/dev/null | wc -l; "
             "command -v uv || echo no-uv; python3 -m pip show uv >/dev/null 2>&1 || echo no-uv-package")
    assert out.split() == ["1.16.0", "0", "no-uv", "no-uv-package"]
    added = docker_client.images.get(result.tag).attrs["Size"] - docker_client.images.get(base_image).attrs["Size"]
    assert added < 20 * 1024 * 1024, added  # the server's layer and six; uv alone would be 55 MB
    # uv installed them: pip leaves its INSTALLER record as "pip", uv as "uv"
    # (uv writes the record without a newline; the echo ends the line, or the engine's log driver
    # may still hold it back when the container is already gone)
    installer = sh(docker_client, result.tag,
                   "cat /usr/local/lib/python3*/dist-packages/six-1.16.0.dist-info/INSTALLER; echo")
    assert installer.strip() == "uv"
    # compiled at build time, as pip would (the image runs with PYTHONDONTWRITEBYTECODE), and so is
    # pack's runtime
    compiled = sh(docker_client, result.tag, "ls /usr/local/lib/python3*/dist-packages/__pycache__/ "
                                              "/app/packager/runtime/__pycache__/")
    assert "six.cpython-311.pyc" in compiled.split() and "entrypoint.cpython-311.pyc" in compiled.split()
