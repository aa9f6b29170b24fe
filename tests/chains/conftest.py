"""Fixtures of the Chains tests: an isolated chainlet registry per test, chain files on disk."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from chains.framework import errors, registry


@pytest.fixture(autouse=True)
def isolated_registry():
    by_name, descriptors = dict(registry.by_name), dict(registry.descriptors)
    errors.take()
    yield
    errors.take()
    registry.by_name.clear()
    registry.by_name.update(by_name)
    registry.descriptors.clear()
    registry.descriptors.update(descriptors)


@pytest.fixture
def chain_file(tmp_path):
    """Write a chain module (unique name) and return its path; its modules are unloaded after."""
    written: list[str] = []

    def write(code: str, stem: str | None = None, files: dict[str, str] | None = None) -> Path:
        stem = stem or f"chain_{uuid.uuid4().hex[:8]}"
        workspace = tmp_path / f"ws_{stem}"
        workspace.mkdir(exist_ok=True)
        for rel, content in (files or {}).items():
            target = workspace / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(content))
            written.append(Path(rel).with_suffix("").parts[0])
        path = workspace / f"{stem}.py"
        path.write_text(textwrap.dedent(code))
        written.append(stem)
        return path

    yield write
    for name in written:
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]
