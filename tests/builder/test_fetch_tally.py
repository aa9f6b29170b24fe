"""The build reads what its weight steps fetched from their output: one result line per download
step that ran; a cut line (BuildKit clips long logs) is not counted; events go on unchanged."""

from __future__ import annotations

import json

from packager.builder.fetch_tally import FetchTally
from packager.constants import TRANSFER_RESULT_MARK
from packager.engine import StepEvent, StepEventKind


def log(line: str) -> StepEvent:
    return StepEvent(StepEventKind.LOG, "#9", "[pack-weights-s00 4/4] RUN ...", line=line)


def test_tally_sums_the_steps_that_ran_and_passes_events_on() -> None:
    seen: list[StepEvent] = []
    tally = FetchTally()
    on_event = tally.watch(seen.append)
    events = [
        log("2026-12-07 10:00:00,000 INFO fetching 8 files, 682 KiB"),
        log(f"2026-12-07 10:00:01,000 INFO {TRANSFER_RESULT_MARK} "
            + json.dumps({"files": 8, "downloaded_bytes": 699421, "cache_hits": 0})),
        log(f"INFO {TRANSFER_RESULT_MARK} " + json.dumps({"files": 1, "downloaded_bytes": 90868376, "cache_hits": 0})),
        log(f"INFO {TRANSFER_RESULT_MARK} {{\"files\": 3, \"downl"),  # clipped by BuildKit
        StepEvent(StepEventKind.DONE, "#9", "[pack-weights-s00 4/4] RUN ...", cached=True),
    ]
    for event in events:
        on_event(event)
    assert seen == events
    assert (tally.steps, tally.files, tally.downloaded_bytes) == (2, 9, 699421 + 90868376)


def test_no_result_lines_is_nothing_fetched() -> None:
    tally = FetchTally()
    tally.watch(None)(log("anything"))
    assert (tally.steps, tally.downloaded_bytes) == (0, 0)
