"""What the real backends find in the engine for `pack logs`, `stop` and `cleanup`: images,
containers and volumes by label, a container's output as a stream, BuildKit cache records."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager.builder import is_pack_cache_mount
from packager.engine import BuildKitEngine, BuildRequest, Engine, RunRequest
from packager.errors import EngineError
from tests.fixtures.docker_env import DockerCleanup, unique, write_context

pytestmark = pytest.mark.docker

# Says three lines, the last one after a pause (a follower must wait for it), then exits.
TALKER = 'CMD ["sh", "-c", "echo one; echo two; sleep 2; echo three"]\n'


@pytest.mark.parametrize("backend", ["buildkit", "classic"])
def test_built_images_carry_the_requested_labels(backend: str, request: pytest.FixtureRequest, base_image: str,
                                                 docker_cleanup: DockerCleanup, tmp_path: Path) -> None:
    engine: Engine = request.getfixturevalue(f"{backend}_engine")
    label = {"dev.pack.test": unique()}
    context = write_context(tmp_path, f"FROM {base_image}\nRUN echo built > /built\n")
    tag = docker_cleanup.image(f"{unique('pack-test-labels')}:1")
    image = engine.build(BuildRequest(context, tag=tag, labels=label))
    found = engine.list_images(label)
    assert [(i.id, i.tags) for i in found] == [(image.id, (tag,))]
    assert found[0].labels.items() >= label.items() and found[0].created > 0
    engine.remove_image(tag)
    assert engine.list_images(label) == [] and engine.image(image.id) is None


def test_containers_by_label_their_output_and_labelled_volumes(
        buildkit_engine: BuildKitEngine, base_image: str, docker_cleanup: DockerCleanup, tmp_path: Path) -> None:
    context = write_context(tmp_path, f"FROM {base_image}\n{TALKER}")
    tag = docker_cleanup.image(f"{unique('pack-test-talker')}:1")
    image = buildkit_engine.build(BuildRequest(context, tag=tag))
    labels = {"dev.pack.test": unique()}
    volume = unique("pack-test-volume")
    docker_cleanup.volumes.append(volume)
    name = docker_cleanup.container(unique())
    container = buildkit_engine.run(RunRequest(tag, name=name, volumes={volume: "/cache"}, labels=labels))

    assert list(container.follow_logs()) == ["one", "two", "three"]  # ends when the container does
    assert container.status() == "exited"
    [info] = buildkit_engine.list_containers(labels)
    assert (info.id, info.name, info.image, info.state) == (container.id, name, image.id, "exited")
    assert buildkit_engine.list_containers({"dev.pack.test": unique()}) == []
    handle = buildkit_engine.container(name)
    assert handle is not None and list(handle.follow_logs(tail=1)) == ["three"]

    [found] = [v for v in buildkit_engine.list_volumes("pack-test-volume-") if v.name == volume]
    assert found.labels == labels  # created by the run's mount, with the run's labels
    with pytest.raises(EngineError, match="volume"):
        buildkit_engine.remove_volume(volume)  # a container (even a stopped one) still uses it
    container.remove()
    assert buildkit_engine.container(name) is None
    buildkit_engine.remove_volume(volume)
    assert [v for v in buildkit_engine.list_volumes("pack-test-volume-") if v.name == volume] == []


def test_build_cache_records_are_listed_and_pruned_one_by_one(
        buildkit_engine: BuildKitEngine, base_image: str, docker_cleanup: DockerCleanup, tmp_path: Path) -> None:
    target = "/" + unique("pack-test-mount")  # BuildKit records the target, not the id
    context = write_context(tmp_path, f"FROM {base_image}\nRUN --mount=type=cache,id={target[1:]},target={target} "
                                      f"echo x > {target}/f\n")
    buildkit_engine.build(BuildRequest(context, tag=docker_cleanup.image(f"{target[1:]}:1")))
    mine = [e for e in buildkit_engine.build_cache() if f"cached mount {target} " in e.description]
    try:
        assert [e.kind for e in mine] == ["exec.cachemount"] and not mine[0].in_use
        assert not is_pack_cache_mount(mine[0])  # another project's mount, as far as cleanup goes
        assert buildkit_engine.prune_build_cache([mine[0].id]) == [mine[0].id]
        assert [e for e in buildkit_engine.build_cache() if e.id == mine[0].id] == []
    finally:
        buildkit_engine.prune_build_cache([e.id for e in mine])

