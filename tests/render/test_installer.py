"""The build's package installer (templates/installer/install.sh.j2), run for real in the offline
base image: uv with pip's settings carried over when it can run and pip is not configured in a
file; pip when a pip.conf exists or the uv beside it cannot run. uv and python are stand-ins that
print what they were called with, so each case shows exactly which tool got which arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from packager.render.context import INSTALLER_COMMAND, INSTALLER_DIR, INSTALLER_MOUNT
from packager.templating import render

pytestmark = pytest.mark.docker

RECORDER = '#!/bin/sh\necho "{name} $*"\nenv | grep -E "^(UV_|SSL_CERT_FILE)" | sort\n'


@pytest.fixture
def installer(tmp_path: Path) -> Path:
    root = tmp_path / "installer"
    root.mkdir()
    (root / "install").write_text(render("installer/install.sh.j2", uv_path=f"{INSTALLER_MOUNT}/uv",
                                         python=f"{INSTALLER_MOUNT}/python3"))
    for name in ("uv", "python3"):
        (root / name).write_text(RECORDER.format(name=name))
        os.chmod(root / name, 0o755)
    return root


def run(client: Any, image: str, installer: Path, script: str, env: dict[str, str] | None = None) -> list[str]:
    out = client.containers.run(image, ["sh", "-c", script], remove=True, network_mode="host",
                                environment={"SSL_CERT_FILE": "", **(env or {})},
                                volumes={str(installer): {"bind": INSTALLER_MOUNT, "mode": "rw"}})
    return out.decode().splitlines()


def test_the_context_binds_the_installer_and_packs_uv(tmp_path: Path) -> None:
    from packager import api
    from packager.plan.context_sources import installer_uv
    from tests.render.conftest import make_truss

    root = make_truss(tmp_path / "t", "model_name: t\nrequirements:\n  - six\n", {})
    _, ctx = api.render(root, tmp_path / "ctx")
    uv = installer_uv()
    assert uv is not None  # a dependency of pack
    assert (ctx.path / INSTALLER_DIR / "uv").read_bytes() == Path(uv).read_bytes()
    dockerfile = (ctx.path / "Dockerfile").read_text()
    assert f"--mount=type=bind,source={INSTALLER_DIR},target={INSTALLER_MOUNT}" in dockerfile
    assert f"{INSTALLER_COMMAND} -r /opt/pack/requirements.txt" in dockerfile
    assert INSTALLER_DIR not in [line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")]


def test_uv_installs_with_pips_settings(docker_client: Any, base_image: str, installer: Path) -> None:
    lines = run(docker_client, base_image, installer, f"sh {INSTALLER_MOUNT}/install -r /r.txt",
                {"PIP_INDEX_URL": "https://mirror.example/simple", "PIP_CERT": "/etc/ca.pem",
                 "PIP_EXTRA_INDEX_URL": "https://a.example/simple https://b.example/simple"})
    assert lines[0] == ("uv pip install --system --break-system-packages --index-strategy unsafe-best-match "
                        f"--python {INSTALLER_MOUNT}/python3 -r /r.txt")
    env = set(lines[1:])
    assert {"UV_LINK_MODE=copy", "UV_PYTHON_DOWNLOADS=never", "UV_HTTP_TIMEOUT=300",
            "SSL_CERT_FILE=/etc/ca.pem",
            "UV_INDEX_URL=https://mirror.example/simple",
            "UV_EXTRA_INDEX_URL=https://a.example/simple https://b.example/simple"} <= env


def test_a_pip_conf_means_pip(docker_client: Any, base_image: str, installer: Path) -> None:
    lines = run(docker_client, base_image, installer,
                f"printf '[global]\\nindex-url = https://private.example/simple\\n' > /etc/pip.conf && "
                f"sh {INSTALLER_MOUNT}/install -r /r.txt 2>&1")
    assert lines[0] == "pack: /etc/pip.conf configures pip: installing with pip"
    assert lines[1] == "python3 -m pip install -r /r.txt" and not [line for line in lines if line.startswith("UV_")]


def test_a_uv_that_cannot_run_means_pip(docker_client: Any, base_image: str, installer: Path) -> None:
    (installer / "uv").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(64))  # another platform's binary, say
    lines = run(docker_client, base_image, installer, f"sh {INSTALLER_MOUNT}/install six")
    assert lines[0] == "python3 -m pip install six" and not [line for line in lines if line.startswith("UV_")]
