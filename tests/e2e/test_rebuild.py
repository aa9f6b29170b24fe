"""Editing model/model.py and rebuilding re-runs only the steps from `COPY model` on, and the
weights are not downloaded again.

Two trusses: the minilm-volume sample (weights fetched at run time, never at build) and a
bake-mode truss whose weights are fresh random bytes served by the stand-in hub, so its first
build must download them (the counter is shown to work) and the rebuild must not.

Which steps ran is read from the build's progress events (StepEvents) and cross-checked with the
engine's own layer list; BuiltImage.cached_steps/built_steps are checked against the same truth.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from packager.builder import BuildResult
from packager.engine import StepEvent
from packager.engine.plain_progress import PlainProgressParser
from tests.e2e.conftest import Hub, Resources, Step, build, steps_from_events
from tests.fixtures.docker_env import unique

pytestmark = pytest.mark.docker

COPY_MODEL = "COPY model /app/model"
WEIGHTS_BYTES = 8 * 1024 * 1024


@dataclass
class Rebuild:
    kind: str
    first: BuildResult
    second: BuildResult
    first_weight_bytes: int  # file bytes the hub served during the first build
    rebuild_weight_bytes: int  # ... and during the rebuild
    rebuild_requests: int
    steps: list[Step]  # the rebuild's Dockerfile steps, from its progress events


def bake_truss(root: Path, hub: Hub) -> Path:
    repo_id = f"e2e-rebuild/{unique('weights')}"
    hub.hub.add_repo(repo_id).commit({
        "config.json": json.dumps({"marker": uuid.uuid4().hex}),
        "model.safetensors": os.urandom(WEIGHTS_BYTES),
    })
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.py").write_text(
        "class Model:\n    def predict(self, model_input):\n        return model_input\n")
    (root / "config.yaml").write_text(
        "model_name: e2e-rebuild-bake\npython_version: py311\nrequirements: []\n"
        f"model_cache:\n  - repo_id: {repo_id}\n    revision: main\n    use_volume: false\n")
    return root


@pytest.fixture(scope="module", params=["volume", "bake"])
def rebuild(request: pytest.FixtureRequest, samples: Path, hub: Hub, resources: Resources,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rebuild]:
    kind = request.param
    if kind == "volume":
        truss = samples / "minilm-volume"
    else:
        truss = bake_truss(tmp_path_factory.mktemp("rebuild") / "bake", hub)
    hub.hub.reset_stats()
    first = build(truss, resources.tag(f"rebuild-{kind}"))
    first_bytes = hub.hub.file_bytes()

    with (truss / "model" / "model.py").open("a") as fh:
        fh.write(f"\n# edited by the e2e rebuild test ({uuid.uuid4().hex})\n")
    hub.hub.reset_stats()
    events: list[StepEvent] = []
    second = build(truss, resources.tag(f"rebuild-{kind}"), events=events)
    yield Rebuild(kind, first, second, first_bytes, hub.hub.file_bytes(), len(hub.hub.requests),
                  steps_from_events(events))


def _final_stage(steps: list[Step]) -> tuple[list[Step], list[Step]]:
    """(final stage's steps in Dockerfile order, steps of the other stages)."""
    copy_model = [s for s in steps if s.instruction == COPY_MODEL]
    assert len(copy_model) == 1, [s.name for s in steps]
    stage = copy_model[0].stage
    final = sorted((s for s in steps if s.stage == stage), key=lambda s: s.number)
    return final, [s for s in steps if s.stage != stage]


def test_rebuild_reruns_only_the_steps_from_copy_model(rebuild: Rebuild) -> None:
    final, others = _final_stage(rebuild.steps)
    at = next(i for i, s in enumerate(final) if s.instruction == COPY_MODEL)
    before, after = final[:at], final[at:]
    # The build announced every step of the final stage (2..N; FROM is step 1).
    assert [s.number for s in final] == list(range(2, final[-1].number + 1))
    assert len(before) >= 6
    assert [s.name for s in before if not s.cached] == []
    assert [s.name for s in after if s.cached] == []
    assert [s.name for s in others if not s.cached] == []  # weight stages (bake) untouched
    if rebuild.kind == "bake":
        assert others, "a bake build has weight download stages"
        assert any(s.instruction.startswith("COPY --from=pack-weights-") for s in before)


def test_rebuild_keeps_every_layer_below_the_model_code(rebuild: Rebuild, docker_client: Any) -> None:
    """The engine's own view: the rebuilt image shares every layer below `COPY model`."""
    final, _ = _final_stage(rebuild.steps)
    at = next(i for i, s in enumerate(final) if s.instruction == COPY_MODEL)
    layers_after = sum(1 for s in final[at:] if s.instruction.split()[0] in ("COPY", "ADD", "RUN"))
    first = docker_client.api.inspect_image(rebuild.first.image.id)["RootFS"]["Layers"]
    second = docker_client.api.inspect_image(rebuild.second.image.id)["RootFS"]["Layers"]
    assert rebuild.first.image.id != rebuild.second.image.id
    assert len(first) == len(second)
    assert first[:-layers_after] == second[:-layers_after]
    assert first[-layers_after] != second[-layers_after]  # the model code layer itself changed


def test_rebuild_downloads_no_weight_bytes(rebuild: Rebuild) -> None:
    assert rebuild.rebuild_weight_bytes == 0
    if rebuild.kind == "bake":
        # The first build did fetch the (new, random) weights through the same counter.
        assert rebuild.first_weight_bytes >= WEIGHTS_BYTES
    else:
        # Volume mode: weights come at run time; with pack.lock fresh the build asks the hub nothing.
        assert rebuild.rebuild_requests == 0


def test_built_image_reports_only_the_steps_from_copy_model_as_built(rebuild: Rebuild) -> None:
    image = rebuild.second.image
    final, _ = _final_stage(rebuild.steps)
    at = next(i for i, s in enumerate(final) if s.instruction == COPY_MODEL)
    assert list(image.built_steps) == [s.name for s in final[at:]]
    before = {s.name for s in rebuild.steps} - {s.name for s in final[at:]}
    assert set(image.cached_steps) <= before


def _parser_reads_padded_step_numbers() -> bool:
    parser = PlainProgressParser()
    for line in ("#5 [stage-0  2/14] RUN true", "#5 CACHED"):
        parser.feed(line)
    return parser.steps() == ([], ["[stage-0  2/14] RUN true"])


@pytest.mark.xfail(
    not _parser_reads_padded_step_numbers(), strict=True,
    reason="packager/engine/plain_progress.py drops steps whose number BuildKit pads with a space "
           "('[stage-0  2/14]', '[ 3/9]'): _STEP_NAME expects exactly one space before the number",
)
def test_built_image_lists_every_cached_step(rebuild: Rebuild) -> None:
    image = rebuild.second.image
    assert sorted(image.cached_steps) == sorted(s.name for s in rebuild.steps if s.cached)
    assert sorted(image.built_steps) == sorted(s.name for s in rebuild.steps if not s.cached)
