"""The pinned weights manifest: what the plan resolved and what the runtime fetches.

One JSON document, written by the plan stage (packager.plan) and read by the transfer engine at
build time (bake mode), at container start (volume mode) and by `pack fetch`. Standard library
only: this module is copied into images.

    {
      "format": "pack-weights-manifest/1",
      "generator": "pack 0.1.0",
      "entries": [                                   # sorted by destination
        {
          "source": {"kind": "hf", "repo": "org/name", "path": "model.safetensors",
                     "endpoint": "https://huggingface.co", "region": null},
          "revision": {"requested": "main", "resolved": "<40-hex commit sha>"},
          "size": 90868376,
          "hash": {"algorithm": "sha256", "digest": "<hex>"},
          "destination": "/app/model_cache/minilm/model.safetensors",
          "volume_folder": "minilm",
          "secret_name": "hf_access_token"
        }
      ]
    }

source.kind is hf | s3 | gcs | azure | https. For s3/gcs, `repo` is the bucket and `path` the full
object key. HF URLs are rebuilt at run time from HF_ENDPOINT, never frozen here; `endpoint` only
records where the plan resolved the entry. hash.algorithm is one of HASH_ALGORITHMS; digests are
lower-case hex ("none" means size-only: nothing verifiable was published by the source).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import asdict, dataclass, field

FORMAT = "pack-weights-manifest/1"
# Where a volume-mode image keeps its manifest (fixed path, read by the entrypoint).
IMAGE_MANIFEST_PATH = "/app/.pack/weights-manifest.json"
SOURCE_KINDS = ("hf", "s3", "gcs", "azure", "https")
HASH_ALGORITHMS = ("sha256", "git-sha1", "md5", "crc32c", "none")


class ManifestError(ValueError):
    """The manifest document is malformed or unsafe (e.g. a destination escaping its root)."""


@dataclass(frozen=True)
class Source:
    kind: str
    repo: str
    path: str
    endpoint: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Revision:
    requested: str
    resolved: str


@dataclass(frozen=True)
class Digest:
    algorithm: str
    digest: str


@dataclass(frozen=True)
class Entry:
    source: Source
    revision: Revision
    size: int
    hash: Digest
    destination: str
    volume_folder: str | None = None
    secret_name: str | None = None

    @property
    def verifiable(self) -> bool:
        return self.hash.algorithm != "none"


@dataclass(frozen=True)
class Manifest:
    entries: tuple[Entry, ...] = ()
    generator: str = "pack"
    format: str = FORMAT

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def folders(self) -> list[str]:
        return sorted({e.volume_folder for e in self.entries if e.volume_folder})

    def to_json(self) -> str:
        """Deterministic serialisation (sorted entries and keys) so equal plans give equal bytes."""
        doc = {
            "format": self.format,
            "generator": self.generator,
            "entries": [asdict(e) for e in sorted(self.entries, key=lambda e: e.destination)],
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def _check_destination(dest: str, index: int) -> None:
    if not dest.startswith("/"):
        raise ManifestError(f"entries[{index}].destination must be absolute, got {dest!r}")
    if "\x00" in dest:
        raise ManifestError(f"entries[{index}].destination contains a NUL byte")
    if any(part == ".." for part in dest.split("/")) or posixpath.normpath(dest) != dest:
        raise ManifestError(
            f"entries[{index}].destination {dest!r} is not a normalised path (it may try to "
            "escape its folder with '..')"
        )


def parse(text: str) -> Manifest:
    """Parse and validate a manifest document; raise ManifestError on anything unsafe."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ManifestError(f"not a pack weights manifest (expected format {FORMAT!r})")
    entries = []
    seen: set[str] = set()
    for i, raw in enumerate(doc.get("entries") or []):
        try:
            entry = Entry(
                source=Source(**raw["source"]),
                revision=Revision(**raw["revision"]),
                size=int(raw["size"]),
                hash=Digest(**raw["hash"]),
                destination=raw["destination"],
                volume_folder=raw.get("volume_folder"),
                secret_name=raw.get("secret_name"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"entries[{i}] is malformed: {exc}") from None
        if entry.source.kind not in SOURCE_KINDS:
            raise ManifestError(f"entries[{i}].source.kind {entry.source.kind!r} is unknown")
        if entry.hash.algorithm not in HASH_ALGORITHMS:
            raise ManifestError(f"entries[{i}].hash.algorithm {entry.hash.algorithm!r} is unknown")
        if entry.size < 0:
            raise ManifestError(f"entries[{i}].size is negative")
        _check_destination(entry.destination, i)
        if entry.destination in seen:
            raise ManifestError(f"entries[{i}].destination {entry.destination!r} appears twice")
        seen.add(entry.destination)
        entries.append(entry)
    return Manifest(entries=tuple(entries), generator=doc.get("generator", "pack"))


def load(path: str) -> Manifest:
    with open(path, encoding="utf-8") as fh:
        return parse(fh.read())


@dataclass
class ManifestBuilder:
    """Collects entries while planning; build() sorts them so output is deterministic."""

    entries: list[Entry] = field(default_factory=list)

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)

    def build(self, generator: str) -> Manifest:
        ordered = tuple(sorted(self.entries, key=lambda e: e.destination))
        for i, e in enumerate(ordered):
            _check_destination(e.destination, i)
        return Manifest(entries=ordered, generator=generator)
