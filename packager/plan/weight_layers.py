"""Baked weights -> image layers: a bounded, stable grouping of the pinned files. Pure.

Why a plan of its own: the overlay storage driver refuses images past about 125 layers, so one
layer per file breaks on real repos (sharded checkpoints of 100-190 files, tokenizers, image
pipelines). Every group below becomes one download stage (an independent BuildKit vertex, so
stages fetch in parallel) and one layer of the final image.

Grouping rules, chosen so that a one-file change re-fetches and re-layers one group:
* a file's group depends only on its stable key (source and path in the source, never the
  resolved revision), so a new revision that changes one file moves nothing else;
* large files (>= large_file_bytes) get a layer each while the budget allows, else they are
  hashed into the layers left over;
* small files are hashed into a power-of-two number of buckets that grows with their count and
  bytes (capped at a quarter of the budget), so adding a file only rarely changes the count.

Hugging Face bake entries are stored as huggingface_hub stores them: the bytes in
`models--org--name/blobs/<etag>` (content, stable across revisions) and `snapshots/<sha>/<path>`
as relative symlinks to the blobs plus `refs/<revision>`, all in one small links layer. A new
revision therefore rewrites only the links layer and the groups whose files changed.
"""

from __future__ import annotations

import hashlib
import math
import posixpath
from dataclasses import dataclass, replace

from packager.runtime.manifest import Entry, Manifest

DEFAULT_MAX_LAYERS = 64
# The overlay storage driver refuses images past about 125 layers ("max depth exceeded"); the
# whole image stays under this many, whatever its base and build_commands.
IMAGE_LAYER_BUDGET = 100
PACK_STEP_LAYERS = 24  # upper bound of the layers pack's own Dockerfile steps add besides weights
UNKNOWN_BASE_LAYERS = 10  # assumed for a base image the engine could not describe
DEFAULT_LARGE_FILE_BYTES = 64 * 1024 * 1024
# How much one small-file layer aims to hold before the bucket count doubles.
SMALL_FILES_PER_LAYER = 256
SMALL_BYTES_PER_LAYER = 512 * 1024 * 1024
STAGE_PREFIX = "pack-weights-"
_SNAPSHOTS = "/snapshots/"


@dataclass(frozen=True)
class WeightLayer:
    """One download stage and the one image layer it produces."""

    name: str  # the stage name, stable for the same group: pack-weights-s03, pack-weights-l1a2b3c4d
    entries: tuple[Entry, ...]  # the stage's manifest: destinations are where the bytes live
    secret_names: tuple[str, ...]
    pip_packages: tuple[str, ...]  # what the downloader needs beyond the standard library

    @property
    def files(self) -> int:
        return len(self.entries)

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries)

    @property
    def manifest(self) -> Manifest:
        return Manifest(self.entries)


@dataclass(frozen=True)
class WeightLink:
    """A symlink of the baked Hugging Face layout: snapshots/<sha>/<path> -> ../../blobs/<etag>."""

    path: str
    target: str  # relative to the link's directory


@dataclass(frozen=True)
class WeightLayerPlan:
    layers: tuple[WeightLayer, ...] = ()
    links: tuple[WeightLink, ...] = ()
    refs: tuple[tuple[str, str], ...] = ()  # (refs/<revision> file, commit sha)
    max_layers: int = DEFAULT_MAX_LAYERS

    @property
    def image_layers(self) -> int:
        """Layers the weights add to the final image (the links layer included)."""
        return len(self.layers) + (1 if self.links or self.refs else 0)

    def summary(self) -> list[dict[str, object]]:
        return [{"name": layer.name, "files": layer.files, "bytes": layer.bytes} for layer in self.layers]


def stable_key(entry: Entry) -> str:
    """What identifies a file across revisions: its source and path, plus where it goes (two
    sources may fetch the same path to different places)."""
    root = entry.destination
    if _SNAPSHOTS in root:
        root = root.split(_SNAPSHOTS, 1)[0]
    return f"{entry.source.kind}\0{entry.source.repo}\0{entry.source.path}\0{root}"


def _bucket(key: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % count


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


def _pow2_at_most(n: int) -> int:
    return 1 << max(0, int(math.log2(max(1, n))))


def _hf_blob(entry: Entry) -> str | None:
    """Where huggingface_hub keeps this snapshot file's bytes, or None for other layouts."""
    if entry.source.kind != "hf" or _SNAPSHOTS not in entry.destination:
        return None
    repo_dir = entry.destination.split(_SNAPSHOTS, 1)[0]
    return f"{repo_dir}/blobs/{entry.hash.digest}"


def _stored(entries: tuple[Entry, ...]) -> tuple[list[tuple[str, Entry]], list[WeightLink], list[tuple[str, str]]]:
    """(stable key, entry placed where its bytes live) per distinct stored file; the HF links
    and refs that point at them."""
    stored: dict[str, tuple[str, Entry]] = {}
    links: list[WeightLink] = []
    refs: dict[str, str] = {}
    for entry in sorted(entries, key=stable_key):
        blob = _hf_blob(entry)
        if blob is None:
            stored[entry.destination] = (stable_key(entry), entry)
            continue
        # Identical content under two paths is one blob, as in huggingface_hub's cache.
        stored.setdefault(blob, (stable_key(entry), replace(entry, destination=blob)))
        links.append(WeightLink(entry.destination,
                                posixpath.relpath(blob, posixpath.dirname(entry.destination))))
        # The snapshot's commit is the one in its path: a file's own pinned commit may be an
        # older one that served the same bytes (plan.lock.keep_pinned_commits).
        repo_dir, rest = entry.destination.split(_SNAPSHOTS, 1)
        refs[f"{repo_dir}/refs/{entry.revision.requested or 'main'}"] = rest.split("/", 1)[0]
    return list(stored.values()), sorted(links, key=lambda link: link.path), sorted(refs.items())


def _layer(name: str, members: list[tuple[str, Entry]]) -> WeightLayer:
    entries = tuple(sorted((e for _, e in members), key=lambda e: e.destination))
    return WeightLayer(
        name=STAGE_PREFIX + name,
        entries=entries,
        secret_names=tuple(sorted({e.secret_name for e in entries if e.secret_name})),
        # S3 goes through boto3; HF, HTTPS and GCS use the downloader's own HTTP client.
        pip_packages=("boto3",) if any(e.source.kind == "s3" for e in entries) else (),
    )


def small_bucket_count(files: int, total_bytes: int, max_layers: int) -> int:
    if files == 0:
        return 0
    wanted = max(math.ceil(files / SMALL_FILES_PER_LAYER), math.ceil(total_bytes / SMALL_BYTES_PER_LAYER), 1)
    return min(_pow2_at_least(wanted), _pow2_at_most(max(1, max_layers // 4)))


def plan_weight_layers(
    manifest: Manifest,
    *,
    max_layers: int = DEFAULT_MAX_LAYERS,
    large_file_bytes: int = DEFAULT_LARGE_FILE_BYTES,
) -> WeightLayerPlan:
    """Group a bake-mode manifest into at most `max_layers` download stages and layers."""
    if max_layers < 1:
        raise ValueError("max_layers must be at least 1")
    stored, links, refs = _stored(manifest.entries)
    if not stored:
        return WeightLayerPlan(max_layers=max_layers)
    large = [s for s in stored if s[1].size >= large_file_bytes]
    small = [s for s in stored if s[1].size < large_file_bytes]
    if max_layers == 1:
        return WeightLayerPlan((_layer("all", stored),), tuple(links), tuple(refs), max_layers)
    buckets = small_bucket_count(len(small), sum(e.size for _, e in small), max_layers)
    layers: list[WeightLayer] = []
    room = max_layers - buckets
    if len(large) <= room:
        layers += [_layer("l" + hashlib.sha256(key.encode()).hexdigest()[:10], [(key, e)]) for key, e in large]
    else:
        groups: dict[int, list[tuple[str, Entry]]] = {}
        for key, entry in large:
            groups.setdefault(_bucket(key, room), []).append((key, entry))
        layers += [_layer(f"lb{index:02d}", members) for index, members in sorted(groups.items())]
    small_groups: dict[int, list[tuple[str, Entry]]] = {}
    for key, entry in small:
        small_groups.setdefault(_bucket(key, buckets), []).append((key, entry))
    layers += [_layer(f"s{index:02d}", members) for index, members in sorted(small_groups.items())]
    return WeightLayerPlan(tuple(layers), tuple(links), tuple(refs), max_layers)


def weight_layer_bound(requested: int, base_layers: int | None, other_layers: int) -> tuple[int, str | None]:
    """The weight layers this image can afford: the requested bound, lowered so base + pack's
    steps + `other_layers` (build_commands, external_data) + weights stay within the budget.
    Returns (bound, a note when it was lowered); the bound is 0 when nothing is left."""
    base = base_layers if base_layers is not None else UNKNOWN_BASE_LAYERS
    room = IMAGE_LAYER_BUDGET - base - PACK_STEP_LAYERS - other_layers - 1  # - the links layer
    if requested <= room:
        return requested, None
    bound = max(room, 0)
    origin = f"{base} layers" if base_layers is not None else f"an unknown number of layers (assumed {base})"
    return bound, (f"baked weights take at most {bound} layers (not {requested}): the base image has {origin} "
                   f"and the image stays under {IMAGE_LAYER_BUDGET} layers (the overlay driver stops near 125)")
