"""What an engine holds besides the image being built: containers, volumes and images found by
label or name, and the BuildKit cache's entries. `pack logs`, `stop` and `cleanup` see the engine
through these (the real backends over the docker API here, FakeEngine in memory)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from packager.engine.containers import DockerContainer
from packager.engine.docker_api import open_client
from packager.errors import EngineError

_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    image: str  # the image id it runs
    state: str  # "running", "exited", "created", ...
    created: float  # seconds since the epoch
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    created: float  # seconds since the epoch
    size: int
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CacheEntry:
    """One record of the engine's BuildKit cache (`docker system df -v`)."""

    id: str
    kind: str  # "regular", "source.local", "exec.cachemount", ...
    description: str
    size: int
    in_use: bool
    last_used: str | None = None


def _label_filter(labels: Mapping[str, str]) -> dict[str, list[str]]:
    return {"label": [f"{key}={value}" for key, value in sorted(labels.items())]} if labels else {}


T = TypeVar("T")


def _ask(what: str, call: Callable[[Any], T], *, gone: T | None = None) -> T | None:
    """call(client) on a client of its own; an engine refusal becomes EngineError("cannot
    <what>: ..."), and with `gone` given, a missing object answers `gone` instead."""
    import docker

    client = open_client()
    try:
        return call(client)
    except docker.errors.NotFound as exc:
        if gone is None:
            raise EngineError(f"cannot {what}: {exc.explanation or exc}") from exc
        return gone
    except docker.errors.APIError as exc:
        raise EngineError(f"cannot {what}: {exc.explanation or exc}") from exc
    finally:
        client.close()


def list_containers(labels: Mapping[str, str]) -> list[ContainerInfo]:
    """Every container (running or not) carrying all of `labels`, oldest first."""
    found = _ask("list containers", lambda c: c.api.containers(all=True, filters=_label_filter(labels))) or []
    infos = [ContainerInfo(c["Id"], (c.get("Names") or ["/" + c["Id"][:12]])[0].lstrip("/"),
                           str(c.get("ImageID") or c.get("Image") or ""), str(c.get("State") or ""),
                           float(c.get("Created") or 0), dict(c.get("Labels") or {})) for c in found]
    return sorted(infos, key=lambda c: (c.created, c.id))


def get_container(ref: str) -> DockerContainer | None:
    """A handle on the container `ref` (id or name), None when there is none."""
    found: dict[str, Any] = _ask(f"inspect container {ref}", lambda c: c.api.inspect_container(ref), gone={}) or {}
    if not found:
        return None
    # The handle keeps a client of its own for its follow-up calls.
    return DockerContainer(found["Id"], str(found.get("Name") or "").lstrip("/"), None, open_client())


def list_volumes(prefix: str) -> list[VolumeInfo]:
    """Volumes whose name starts with `prefix`, by name."""
    # The engine's name filter matches anywhere in the name: the prefix is checked here.
    answer = _ask("list volumes", lambda c: c.api.volumes(filters={"name": prefix} if prefix else None)) or {}
    return sorted((VolumeInfo(v["Name"], dict(v.get("Labels") or {})) for v in answer.get("Volumes") or ()
                   if str(v["Name"]).startswith(prefix)), key=lambda v: v.name)


def remove_volume(name: str) -> None:
    """Remove a volume; EngineError while a container still uses it. Gone already is fine."""
    _ask(f"remove volume {name}", lambda c: c.api.remove_volume(name) or True, gone=True)


def list_images(labels: Mapping[str, str]) -> list[ImageInfo]:
    """Local images carrying all of `labels` (tagged or not), oldest first."""
    found = _ask("list images", lambda c: c.api.images(filters=_label_filter(labels))) or []
    infos = [ImageInfo(i["Id"], tuple(t for t in i.get("RepoTags") or () if t != "<none>:<none>"),
                       _created(i), int(i.get("Size") or 0), dict(i.get("Labels") or {}))
             for i in found]
    return sorted(infos, key=lambda i: (i.created, i.id))


def _created(image: Mapping[str, Any]) -> float:
    """When the image was made, to the nanosecond: the list answers whole seconds, and two
    builds of one truss often fall in the same second (which of them is newest decides what
    `pack cleanup --keep` keeps)."""
    listed = float(image.get("Created") or 0)
    attrs: dict[str, Any] = _ask("inspect an image", lambda c: dict(c.api.inspect_image(image["Id"])), gone={}) or {}
    return precise_time(str(attrs.get("Created") or "")) or listed


def precise_time(text: str) -> float | None:
    """Seconds since the epoch of Docker's RFC 3339 time ("2026-12-07T21:35:01.123456789Z");
    None for anything else."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(whole + (zone.replace("Z", "+00:00") if zone else "+00:00"))
    return stamp.timestamp() + (float("0." + fraction) if fraction else 0.0)


def remove_image(ref: str) -> None:
    """Remove `ref`: a tag is untagged (the image goes with its last tag), an id is removed when
    no tag names it. Never forced: an image a container still uses stays (EngineError)."""
    _ask(f"remove image {ref}", lambda c: c.api.remove_image(ref) or True, gone=True)


def list_build_cache() -> list[CacheEntry]:
    """The BuildKit cache's records, as `docker system df -v` lists them."""
    records = (_ask("list the build cache", lambda c: c.df()) or {}).get("BuildCache") or []
    return [CacheEntry(str(r["ID"]), str(r.get("Type") or ""), str(r.get("Description") or ""),
                       int(r.get("Size") or 0), bool(r.get("InUse")), str(r.get("LastUsedAt") or "") or None)
            for r in records]


def prune_build_cache(ids: Iterable[str]) -> list[str]:
    """Remove these BuildKit cache records; the ids the engine says it removed (one in use by a
    running build stays)."""
    def prune(cache_id: str) -> Callable[[Any], dict[str, Any]]:
        # One id per call: the engine takes a single id filter and matches it as a regular
        # expression, which an anchored one makes exact.
        return lambda client: dict(client.api.prune_builds(filters={"id": [f"^{cache_id}$"]}, all=True) or {})

    removed: list[str] = []
    for cache_id in ids:
        answer = _ask(f"remove build cache record {cache_id}", prune(cache_id)) or {}
        removed += [str(i) for i in answer.get("CachesDeleted") or () if str(i) == cache_id]
    return removed
