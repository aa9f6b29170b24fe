"""Docker fixtures (engine, base image, registry) shared by these tests; see tests/fixtures/docker_env.py."""

from tests.fixtures.docker_env import (  # noqa: F401  (pytest finds fixtures by name)
    base_image,
    buildkit_engine,
    classic_engine,
    docker_cleanup,
    docker_client,
    docker_info,
    registry,
)
