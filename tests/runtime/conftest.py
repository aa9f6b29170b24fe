"""Fixtures for the runtime server tests (helpers live in harness.py)."""

from __future__ import annotations

import pytest

from tests.runtime.harness import App, Runtime


@pytest.fixture
def runtimes():
    """Start runtimes inside a test; all are killed at teardown."""
    started: list[Runtime] = []

    def start(app: App, **env: str) -> Runtime:
        rt = Runtime(app, **env).start()
        started.append(rt)
        return rt

    yield start
    for rt in started:
        rt.kill()
