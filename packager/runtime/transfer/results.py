"""What a fetch reports back: one FileResult per manifest entry, totals in FetchResult."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

# FileResult.status values
DOWNLOADED = "downloaded"  # fetched from the source during this run
CACHED = "cached"  # linked or copied from the content-addressed cache, no network
PRESENT = "present"  # already at its destination with a matching verified marker
FAILED = "failed"


@dataclass
class FileResult:
    destination: str  # path written (after dest_root mapping)
    source: str  # human-readable source, e.g. hf://org/name@sha/file
    size: int
    status: str
    verification: str  # the algorithm checked, or "size-only"
    bytes_downloaded: int = 0
    seconds: float = 0.0
    retries: int = 0
    resumed_bytes: int = 0  # bytes taken over from an interrupted earlier run
    # Bytes the hash read back from the file instead of taking them from memory as they
    # arrived: resumed ranges, and ranges that ran past the hash window.
    hashed_from_disk: int = 0
    error: str | None = None

    @property
    def cache_hit(self) -> bool:
        return self.status == CACHED


@dataclass
class FetchResult:
    files: list[FileResult] = field(default_factory=list)
    bytes_downloaded: int = 0
    bytes_total: int = 0
    cache_hits: int = 0
    seconds: float = 0.0
    workers: int = 0
    streams: int = 0  # the most streams that ran at once (the governor's peak)

    @property
    def failures(self) -> list[FileResult]:
        return [f for f in self.files if f.status == FAILED]

    @property
    def ok(self) -> bool:
        return not self.failures

    def throughput(self) -> float:
        return self.bytes_downloaded / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        """The stats file's JSON document."""
        return {
            "bytes_downloaded": self.bytes_downloaded,
            "bytes_total": self.bytes_total,
            "seconds": round(self.seconds, 4),
            "throughput_bytes_per_second": round(self.throughput()),
            "cache_hits": self.cache_hits,
            "workers": self.workers,
            "streams": self.streams,
            "files": [dict(asdict(f), cache_hit=f.cache_hit) for f in self.files],
        }

    def write_stats(self, path: str) -> None:
        """Write the JSON stats file atomically (a reader never sees half a document)."""
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.as_dict(), fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
