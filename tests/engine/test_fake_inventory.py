"""FakeEngine keeps what the real engines keep, where callers can tell: labelled images,
containers and volumes, refusals to remove what is in use, and BuildKit cache records for the
cache mounts its builds use (as Docker 20.10 describes them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager.engine import BuildRequest, Engine, FakeEngine, RunRequest
from packager.errors import EngineError

DOCKERFILE = """\
FROM pack-base:bookworm-py311
RUN --mount=type=cache,id=pip-x,target=/root/.cache/pip pip install -r /opt/x/requirements.txt
COPY model /app/model
"""


def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.py").write_text("class Model: ...\n")
    return tmp_path


def test_images_carry_their_labels_and_leave_with_their_last_tag(tmp_path: Path) -> None:
    fake = FakeEngine()
    assert isinstance(fake, Engine)
    ctx = context(tmp_path)
    one = fake.build(BuildRequest(ctx, tag="m:1", labels={"truss": "a"}))
    other = fake.build(BuildRequest(ctx, tag="m:2", labels={"truss": "b"}))
    assert one.id != other.id  # the labels are part of the image config
    fake.images["m:latest"] = one
    [found] = fake.list_images({"truss": "a"})
    assert (found.id, found.tags, found.labels) == (one.id, ("m:1", "m:latest"), {"truss": "a"})
    with pytest.raises(EngineError, match="must force"):
        fake.remove_image(one.id)
    fake.run(RunRequest("m:1", name="c"))
    fake.remove_image("m:latest")
    with pytest.raises(EngineError, match="container c is using it"):
        fake.remove_image("m:1")
    fake.container("c").remove()  # type: ignore[union-attr]
    fake.remove_image("m:1")
    assert fake.list_images({"truss": "a"}) == [] and fake.image(one.id) is None
    assert fake.list_images({"truss": "b"})[0].id == other.id


def test_containers_and_the_volumes_they_create_carry_the_run_labels(tmp_path: Path) -> None:
    fake = FakeEngine()
    fake.build(BuildRequest(context(tmp_path), tag="m:1", labels={"truss": "a", "model": "m"}))
    container = fake.run(RunRequest("m:1", name="c", volumes={"pack-weights-m": "/cache", "/host": "/h"},
                                    labels={"truss": "a", "run": "1"}))
    assert container.labels == {"truss": "a", "model": "m", "run": "1"}  # the image's, then the run's
    assert [v.name for v in fake.list_volumes("pack-weights-")] == ["pack-weights-m"]
    assert fake.list_volumes("pack-weights-")[0].labels == {"truss": "a", "run": "1"}
    assert [c.name for c in fake.list_containers({"truss": "a"})] == ["c"]
    assert fake.list_containers({"truss": "b"}) == []
    with pytest.raises(EngineError, match="in use"):
        fake.remove_volume("pack-weights-m")
    container.remove()
    fake.remove_volume("pack-weights-m")
    assert fake.list_volumes("") == [] and fake.container("c") is None


def test_builds_leave_cache_mount_records_that_prune_removes(tmp_path: Path) -> None:
    fake = FakeEngine()
    ctx = context(tmp_path)
    fake.build(BuildRequest(ctx, tag="m:1"))
    (ctx / "Dockerfile").write_text(DOCKERFILE.replace("requirements.txt", "other.txt"))
    fake.build(BuildRequest(ctx, tag="m:2"))  # the same mount again: still one record
    [record] = fake.build_cache()
    assert record.kind == "exec.cachemount"
    assert record.description == ("cached mount /root/.cache/pip from exec /bin/sh -c "
                                  "pip install -r /opt/x/requirements.txt")
    assert fake.prune_build_cache([record.id, "no-such-record"]) == [record.id]
    assert fake.build_cache() == []
