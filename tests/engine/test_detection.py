"""Choosing a BuildKit client by asking each docker CLI what it can do (fake CLIs, no engine)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from packager.engine.detection import PACK_DOCKER_CLI, candidate_clis, probe_cli

BUILDX = """#!/bin/sh
case "$1" in
  --version) echo "Docker version 27.1.0, build abc";;
  buildx) echo "github.com/docker/buildx v0.16.0 abc";;
  *) exit 1;;
esac
"""
# A 23+ client without the plugin: DOCKER_BUILDKIT=1 builds are refused.
NO_BUILDX = """#!/bin/sh
case "$1" in
  --version) echo "Docker version 28.2.2, build e6534b4";;
  buildx) echo "docker: unknown command: docker buildx" >&2; exit 1;;
  build) echo "ERROR: BuildKit is enabled but the buildx component is missing or broken." >&2; exit 1;;
esac
"""
# A 20.10 client: no buildx, but BuildKit inside `docker build`.
LEGACY = """#!/bin/sh
case "$1" in
  --version) echo "Docker version 20.10.24+dfsg1, build 297e128";;
  buildx) echo "docker: 'buildx' is not a docker command." >&2; exit 1;;
  build) [ "$DOCKER_BUILDKIT" = 1 ] && echo "      --secret stringArray   Secret file to expose to the build"; exit 0;;
esac
"""


def fake_cli(directory: Path, script: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "docker"
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_probe_tells_the_three_clients_apart(tmp_path: Path) -> None:
    buildx = probe_cli(fake_cli(tmp_path / "a", BUILDX))
    assert buildx.buildx_version and buildx.buildkit and buildx.client_version == "27.1.0"
    newer = probe_cli(fake_cli(tmp_path / "b", NO_BUILDX))
    assert not newer.buildkit and "buildx" in newer.note
    legacy = probe_cli(fake_cli(tmp_path / "c", LEGACY))
    assert legacy.legacy_buildkit and legacy.buildkit and legacy.client_version == "20.10.24+dfsg1"


def test_candidates_follow_path_order_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = fake_cli(tmp_path / "first", NO_BUILDX)
    second = fake_cli(tmp_path / "second", LEGACY)
    override = fake_cli(tmp_path / "override", BUILDX)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "first"), str(tmp_path / "second")]))
    monkeypatch.delenv(PACK_DOCKER_CLI, raising=False)
    assert candidate_clis() == [first, second]
    monkeypatch.setenv(PACK_DOCKER_CLI, override)
    assert candidate_clis() == [override, first, second]
