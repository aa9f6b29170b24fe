"""Cold start of a built image: the weight prefetch runs behind the user's import, readiness says
503 until load() returned, the weights are verified in place before __init__ runs, a restart on
the same cache volume downloads nothing, and a failed load ends the container with a non-zero
status and the reason in its log.

One image (model.py: 2 s of CPU-bound import work, 256 MiB of volume-mode weights from the paced
stand-in, see conftest.py), built once for the module. Times compared with the runtime's timeline
are the model's own, taken on the same clock (seconds since the process started, from /proc).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from packager import api, runner
from packager.builder import BuildResult
from packager.plan.model import BuildOptions
from packager.runtime.serving.lazy_data import MISSING_COLLECTION_MESSAGE
from tests.e2e_runtime.conftest import (
    BASE_IMAGE,
    FILE_COUNT,
    IMPORT_SECONDS,
    Launch,
    Resources,
    Weights,
    free_port,
    launch,
    predict,
    timeline_doc,
    tl_stage,
    unique,
    wait_exit,
    write_truss,
)

pytestmark = pytest.mark.docker

CLOCK_SLACK = 0.05  # /proc start times have clock-tick (10 ms) resolution


@pytest.fixture(scope="module")
def image(weights: Weights, resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    model_name = f"e2e-rt-cold-{uuid.uuid4().hex[:8]}"
    truss = write_truss(tmp_path_factory.mktemp("truss") / "cold", model_name, weights.expected)
    tag = f"{model_name}:e2e"
    resources.tags.append(tag)
    result = api.build(truss, BuildOptions(base_image=BASE_IMAGE), tag=tag)
    # The volume runner.start mounts for this model: unique, because the model name is.
    resources.volumes.append(runner.cache_volume_name(result.plan))
    return result


@dataclass
class Cold:
    launch: Launch
    timeline: dict
    report: dict
    fetched_bytes: int


@pytest.fixture(scope="module")
def cold(image: BuildResult, weights: Weights, resources: Resources) -> Cold:
    """The first start of the image on an empty cache volume, watched from `docker run` on.
    Tests read what was captured here; test_restart stops the container."""
    weights.hub.reset_stats()
    started = launch(image.image.id, resources, volume=runner.cache_volume_name(image.plan))
    assert started.ready_after is not None, f"exited with {started.exit_code}:\n{started.logs()}"
    return Cold(started, timeline_doc(started.port), predict(started.port, {"report": True}),
                weights.hub.file_bytes())


def test_cold_start_downloads_every_byte_once(cold: Cold, weights: Weights) -> None:
    download = cold.timeline["download"]
    assert download["ok"] is True and download["files"] == FILE_COUNT
    assert download["bytes_downloaded"] == weights.total_bytes
    assert cold.fetched_bytes == weights.total_bytes  # ranged parts add up; nothing fetched twice


def test_prefetch_starts_before_the_user_import(cold: Cold) -> None:
    prefetch_start = tl_stage(cold.timeline, "prefetch_start")
    import_end = tl_stage(cold.timeline, "import_end")
    marks = cold.report["marks"]
    assert prefetch_start < import_end
    # Before the first line of model.py ran, not merely before it finished.
    assert prefetch_start <= marks["module_start"] + CLOCK_SLACK, (cold.timeline["stages"], marks)
    # The model's own clock agrees with the runtime's about when the import ended.
    assert marks["import_end"] == pytest.approx(import_end, abs=0.1)
    assert marks["import_end"] - marks["module_start"] >= IMPORT_SECONDS * 0.95
    hidden = cold.timeline["download"]["hidden_seconds"]
    assert hidden > 0.5, (f"ready after {cold.launch.ready_after:.2f} s from docker run", cold.timeline, marks)


def test_readiness_503_while_loading_then_200(cold: Cold) -> None:
    polls = cold.launch.polls
    answered = [(t, ready, live) for t, ready, live in polls if ready]
    assert answered, polls
    statuses = [ready for _, ready, _ in answered]
    assert set(statuses) == {503, 200} and statuses[-1] == 200, statuses
    first_200 = statuses.index(200)
    assert all(s == 503 for s in statuses[:first_200]), statuses  # never ready, then loading again
    # 503 for the whole import (2 s of the model's module code) while liveness already said 200.
    loading = [(t, live) for t, ready, live in answered if ready == 503]
    assert answered[first_200][0] - loading[0][0] > IMPORT_SECONDS * 0.75, answered
    assert all(live == 200 for _, live in loading), loading
    # Ready only once load() returned, as the timeline tells.
    stages = cold.timeline["stages"]
    assert stages["load_end"] <= stages["ready"]
    assert cold.report["marks"]["load_end"] <= stages["ready"] + CLOCK_SLACK


def test_weights_verified_in_place_before_init(cold: Cold) -> None:
    """Every file existed with its sha256 when __init__ started: the download was complete,
    verified and placed before the model's constructor ran."""
    marks = cold.report["marks"]
    assert cold.report["in_place_at_init"] == dict.fromkeys(cold.report["in_place_at_init"], "ok")
    assert len(cold.report["in_place_at_init"]) == FILE_COUNT
    stages = cold.timeline["stages"]
    assert stages["prefetch_end"] <= marks["init_start"] + CLOCK_SLACK, (stages, marks)
    assert stages["import_end"] <= marks["init_start"] + CLOCK_SLACK <= stages["init_end"] + 2 * CLOCK_SLACK
    # Nothing was left for load() to wait for.
    assert cold.timeline["download"]["blocked_seconds"] < 0.1, cold.timeline


def test_restart_with_the_same_cache_volume_downloads_nothing(
        cold: Cold, image: BuildResult, weights: Weights, resources: Resources) -> None:
    first = cold.launch.container
    first.stop(timeout_s=30)  # SIGTERM: drain and exit 0
    assert first.exit_code() == 0, first.logs(tail=40)
    weights.hub.reset_stats()
    name = unique("pack-e2e-rt")
    resources.containers.append(name)
    running = runner.start(image.image.id, image.plan, port=free_port(), name=name, timeout=120)
    try:
        assert weights.hub.file_bytes() == 0, weights.hub.counts()
        doc = timeline_doc(int(running.url.rsplit(":", 1)[1]))
        download = doc["download"]
        assert download["ok"] is True
        assert download["bytes_downloaded"] == 0 and download["cache_hits"] == FILE_COUNT, download
        report = predict(int(running.url.rsplit(":", 1)[1]), {"report": True})
        assert set(report["in_place_at_init"].values()) == {"ok"}, report
        assert running.timeline is not None and "ready" in running.timeline["stages"]
    finally:
        running.container.remove()


@pytest.mark.parametrize(("fail", "reason"), [
    ("load", "RuntimeError: e2e: load() failed on purpose (E2E_FAIL=load)"),
    ("no_block", MISSING_COLLECTION_MESSAGE.splitlines()[0]),
], ids=["load-raises", "never-blocks-for-the-weights"])
def test_failed_load_exits_non_zero_with_the_reason_in_the_log(
        fail: str, reason: str, image: BuildResult, resources: Resources) -> None:
    started = launch(image.image.id, resources, volume=unique("pack-e2e-rt-weights"),
                     env={"E2E_FAIL": fail, "E2E_IMPORT_SECONDS": "0.2"})
    assert started.ready_after is None, "a model whose load failed became ready"
    code = wait_exit(started.container)
    logs = started.logs()
    assert code is not None and code != 0, (code, logs[-3000:])
    assert "model load failed" in logs and reason in logs, logs[-3000:]
    assert all(ready != 200 for _, ready, _ in started.polls)
    started.container.remove()

