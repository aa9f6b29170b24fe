"""Fixtures every test directory may use: the Docker engine, base image and registry stand-ins
(tests/fixtures/docker_env.py), and a readiness-route stand-in for runs over the FakeEngine
(tests/fixtures/ready_server.py). They start what they need and skip cleanly without an engine."""

pytest_plugins = ["tests.fixtures.docker_env", "tests.fixtures.ready_server"]
