"""Progress of a push or pull, one event per engine status update."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TransferEvent:
    status: str  # "Preparing", "Pushing", "Pushed", "Layer already exists", "Downloading", ...
    layer: str | None  # short layer id; None for whole-image lines
    current: int | None = None  # bytes so far, while a layer moves
    total: int | None = None


TransferCallback = Callable[[TransferEvent], None]


def ignore_transfer(_event: TransferEvent) -> None:
    """The default callback."""


def transfer_event(chunk: Mapping[str, Any]) -> TransferEvent | None:
    status = chunk.get("status")
    if not isinstance(status, str):
        return None
    detail = chunk.get("progressDetail") or {}
    return TransferEvent(status, chunk.get("id"), detail.get("current"), detail.get("total"))
