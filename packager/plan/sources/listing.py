"""From a source's listing to manifest entries: filtering, the no-match error, destinations.

Sources do the I/O (list, stat) and hand over RemoteFile records; everything here is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from packager.errors import PlanError
from packager.plan.patterns import PathFilter
from packager.plan.sources.layout import mount_destination, unsafe_path_reason, volume_destination
from packager.plan.sources.spec import SourceSpec
from packager.runtime.manifest import Digest, Entry, Revision, Source

SAMPLE_SIZE = 12
T = TypeVar("T")


@dataclass(frozen=True)
class RemoteFile:
    """One file a source will serve, pinned."""

    path: str  # relative to the repo root / bucket prefix: what patterns and volume mode see
    key: str  # path inside the source: HF path in repo, or the full object key
    size: int
    hash: Digest
    resolved: str  # commit sha (HF), VersionId / generation, or etag@last-modified


@dataclass(frozen=True)
class SourceRef:
    """The constant part of Entry.source for one listing."""

    kind: str
    repo: str  # HF repo id, or bucket
    endpoint: str | None
    region: str | None = None


def sample(paths: Sequence[str], limit: int = SAMPLE_SIZE) -> str:
    shown = sorted(paths)[:limit]
    more = f", … ({len(paths) - limit} more)" if len(paths) > limit else ""
    return ", ".join(shown) + more


def select(
    spec: SourceSpec, items: Sequence[T], path_of: Callable[[T], str], holder: str
) -> list[T]:
    """Apply the entry's patterns; zero matches is an error listing what `holder` contains."""
    path_filter = PathFilter.from_lists(spec.allow_patterns, spec.ignore_patterns)
    chosen = [item for item in items if path_filter.matches(path_of(item))]
    if chosen:
        return chosen
    paths = [path_of(item) for item in items]
    raise PlanError(
        f"{spec.where}: no file matched allow_patterns {_show(spec.allow_patterns)} / "
        f"ignore_patterns {_show(spec.ignore_patterns)}; {holder} holds {len(paths)} "
        f"file{'s' if len(paths) != 1 else ''}: {sample(paths)}",
        hint="patterns match the path from the repo root (or bucket prefix), case-sensitively; "
        "'*' also crosses '/', so '*.safetensors' finds files in sub-folders too",
    )


def _show(patterns: Sequence[str] | None) -> str:
    return "null" if patterns is None else str(list(patterns))


def to_entries(
    spec: SourceSpec,
    ref: SourceRef,
    files: Sequence[RemoteFile],
    bake_destination: Callable[[RemoteFile], str],
) -> list[Entry]:
    """Entries for `files`, sorted by destination; refuses paths that could escape their folder."""
    entries = []
    for item in files:
        for candidate in (item.path, item.key):
            reason = unsafe_path_reason(candidate)
            if reason is not None:
                raise PlanError(
                    f"{spec.where}: cannot place '{candidate}' in the image: {reason}",
                    hint="exclude it with ignore_patterns, or rename the object",
                )
        if spec.mount_location:
            destination = mount_destination(spec.mount_location, item.path)
        elif spec.use_volume:
            destination = volume_destination(spec.volume_folder or "", item.path)
        else:
            destination = bake_destination(item)
        entries.append(
            Entry(
                source=Source(ref.kind, ref.repo, item.key, ref.endpoint, ref.region),
                revision=Revision(requested=spec.revision, resolved=item.resolved),
                size=item.size,
                hash=item.hash,
                destination=destination,
                volume_folder=spec.volume_folder if spec.use_volume and not spec.mount_location else None,
                # Always recorded (as Truss does) so the lock does not depend on which host
                # planned it; a runtime that finds no such secret goes anonymous.
                secret_name=spec.runtime_secret_name,
            )
        )
    return sorted(entries, key=lambda e: e.destination)
