"""Fixtures every test directory may use: the Docker engine, base image and registry stand-ins
(tests/fixtures/docker_env.py), and a readiness-route stand-in for runs over the FakeEngine
(tests/fixtures/ready_server.py). They start what they need and skip cleanly without an engine."""

import pytest

pytest_plugins = [
    "tests.fixtures.docker_env",
    "tests.fixtures.hf_hub",
    "tests.fixtures.object_stores",
    "tests.fixtures.ready_server",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/render/golden/ from the current renders (tests/render/test_golden.py)")
