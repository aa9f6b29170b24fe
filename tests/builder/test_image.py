"""builder.base_image_facts: the base image's USER, asked of the real engine before planning."""

from __future__ import annotations

from typing import Any

import pytest

from packager.builder import base_image_facts
from packager.engine import BuildRequest, open_engine
from tests.fixtures.docker_env import DockerCleanup, unique, write_context

pytestmark = pytest.mark.docker


def test_facts_of_local_bases_and_of_one_that_cannot_be_pulled(
    docker_info: Any, base_image: str, docker_cleanup: DockerCleanup, tmp_path: Any
) -> None:
    engine = open_engine(docker_info)
    facts = base_image_facts(engine, base_image)
    assert (facts.image, facts.user) == (base_image, "")  # pack-base runs as root

    tag = docker_cleanup.image(f"{unique('pack-test-user')}:1")
    engine.build(BuildRequest(write_context(tmp_path, f"FROM {base_image}\nRUN useradd -u 4242 svc\nUSER svc:svc\n"),
                              tag=tag))
    assert base_image_facts(engine, tag).user == "svc:svc"

    # Not local, and no registry serves it (offline here; an unknown name elsewhere).
    missing = f"127.0.0.1:9/{unique('pack-test-missing')}:1"
    facts = base_image_facts(engine, missing)
    assert facts.user is None
    assert facts.detail.startswith(f"not local, and the pull failed: cannot pull {missing}")
