"""What the weight steps of a build fetched, read from their output as it streams: each bake-mode
download step logs one TRANSFER_RESULT_MARK line when it is done; a step BuildKit took from its
cache (local or imported with --cache-from) runs nothing and logs nothing, so it counts 0."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..constants import TRANSFER_RESULT_MARK
from ..engine import ProgressCallback, StepEvent


@dataclass
class FetchTally:
    steps: int = 0  # download steps that ran
    downloaded_bytes: int = 0
    files: int = 0

    def watch(self, progress: ProgressCallback | None) -> ProgressCallback:
        """A callback that tallies and then hands every event on to `progress`."""

        def on_event(event: StepEvent) -> None:
            if event.line and TRANSFER_RESULT_MARK in event.line:
                self._add(event.line.partition(TRANSFER_RESULT_MARK)[2])
            if progress is not None:
                progress(event)

        return on_event

    def _add(self, text: str) -> None:
        try:
            result = json.loads(text)
        except ValueError:  # a cut line (BuildKit clips long step logs): not a result
            return
        if isinstance(result, dict):
            self.steps += 1
            self.downloaded_bytes += int(result.get("downloaded_bytes", 0))
            self.files += int(result.get("files", 0))
