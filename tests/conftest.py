"""Fixtures every test directory may use: the Docker engine, base image and registry stand-ins
(tests/fixtures/docker_env.py). They start what they need and skip cleanly without an engine."""

pytest_plugins = ["tests.fixtures.docker_env"]
