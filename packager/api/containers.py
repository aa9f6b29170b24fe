"""What pack leaves running or stored for a truss: its containers (`pack logs`, `pack stop`), and
everything `pack cleanup` removes. A truss's containers, images and weight-cache volumes are
found by the labels pack gives them (builder.truss_labels), never by name alone, so nothing of
another truss is touched."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from .. import runner
from ..builder import pack_cache_mounts, truss_selector
from ..config import CONFIG_FILENAME
from ..constants import LABEL_TRUSS
from ..engine import ContainerHandle, ContainerInfo, Engine, ImageInfo, open_engine
from ..errors import EngineError, PackError
from ..interrupts import signals_held
from .target import Target, resolve_target
from .truss import TrussArg

DEFAULT_KEEP = 1  # images of the truss cleanup keeps: the newest, which the next run builds on


def _target_selector(truss_dir: TrussArg, config: str | os.PathLike[str] | None) -> tuple[Target, dict[str, str]]:
    """The truss and the labels of what pack created for it (keyed by its config file, as
    builder.truss_labels writes them; a ModelBase file's truss is its generated directory)."""
    target = resolve_target(truss_dir, config)
    config_file = target.config_file or (target.truss_dir if target.truss_dir.is_file()
                                         else target.truss_dir / CONFIG_FILENAME)
    return target, truss_selector(config_file)


def containers(truss_dir: TrussArg = ".", *, config: str | os.PathLike[str] | None = None,
               engine: Engine | None = None) -> list[ContainerInfo]:
    """The truss's containers pack started (`pack run`, `pack watch`), running or not, oldest first."""
    _, selector = _target_selector(truss_dir, config)
    return (engine or open_engine()).list_containers(selector)


@dataclass(frozen=True)
class Logs:
    container: ContainerInfo
    lines: Iterator[str]


def logs(truss_dir: TrussArg = ".", *, follow: bool = False, tail: int | None = None,
         config: str | os.PathLike[str] | None = None, engine: Engine | None = None) -> Logs:
    """The output of the truss's container (the running one, else the newest): its last `tail`
    lines (all by default), and with follow every line after them until it stops."""
    engine = engine or open_engine()
    target, selector = _target_selector(truss_dir, config)
    found = engine.list_containers(selector)
    if not found:
        raise PackError(f"no container of {target.argument} is there",
                        hint=f"start one with `pack run {target.argument}`")
    chosen = max(found, key=lambda c: (c.state == "running", c.created))
    handle = _handle(engine, chosen)
    lines = handle.follow_logs(tail) if follow else iter(handle.logs(tail).splitlines())
    return Logs(chosen, lines)


def _handle(engine: Engine, info: ContainerInfo) -> ContainerHandle:
    handle = engine.container(info.id)
    if handle is None:
        raise PackError(f"container {info.name} went away", hint="it was removed meanwhile")
    return handle


def stop(truss_dir: TrussArg = ".", *, timeout_s: int = 10, config: str | os.PathLike[str] | None = None,
         engine: Engine | None = None) -> list[ContainerInfo]:
    """Stop the truss's containers as `docker stop` does (SIGTERM, SIGKILL after timeout_s) and
    remove them (their weight-cache volume stays for the next run); the containers it stopped."""
    engine = engine or open_engine()
    _, selector = _target_selector(truss_dir, config)
    found = engine.list_containers(selector)
    for info in found:
        handle = engine.container(info.id)
        if handle is not None:
            runner.shut_down(handle, timeout_s=timeout_s)
    return found


def attach(running: runner.Running, stop: threading.Event | None = None) -> int | None:
    """Wait while the container runs (its output going where runner.start sends it); its exit
    code. Once `stop` is set (the caller's Ctrl-C or SIGTERM handler sets it), or on a
    KeyboardInterrupt, the container is stopped and removed and KeyboardInterrupt raised."""
    try:
        code = runner.wait_exit(running, stop=stop)
    except KeyboardInterrupt:
        stop_running(running)
        raise
    if stop is not None and stop.is_set():
        stop_running(running)
        raise KeyboardInterrupt
    return code


def readable_log_line(line: str) -> str:
    """A container's output line as a person reads it: the server's JSON log records as plain
    "time LEVEL message" lines (their tracebacks below), anything else as it is."""
    return runner.readable(line)


def stop_running(running: runner.Running) -> None:
    """Stop and remove a container `run` started (nothing if it is gone already); Ctrl-C and
    SIGTERM wait until it is done."""
    with signals_held():
        runner.shut_down(running.container, running.output)


# --- cleanup ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CleanupItem:
    kind: str  # "container" | "volume" | "image" | "build-cache"
    name: str  # container or volume name, image tags (or id), cache record id
    detail: str = ""
    size: int | None = None  # bytes, where the engine says

    def as_dict(self) -> dict[str, str | int | None]:
        return {"kind": self.kind, "name": self.name, "detail": self.detail, "size": self.size}


@dataclass(frozen=True)
class CleanupReport:
    dry_run: bool
    items: tuple[CleanupItem, ...]  # removed (with dry_run: what would be)
    kept: tuple[CleanupItem, ...]  # the truss's newest images, `keep` of them
    failed: tuple[tuple[CleanupItem, str], ...] = field(default=())  # and why

    def as_dict(self) -> dict[str, object]:
        return {"dry_run": self.dry_run, "items": [i.as_dict() for i in self.items],
                "kept": [i.as_dict() for i in self.kept],
                "failed": [{**i.as_dict(), "error": why} for i, why in self.failed]}


def _image_item(image: ImageInfo) -> CleanupItem:
    return CleanupItem("image", " ".join(image.tags) or image.id, image.id, image.size)


def cleanup(truss_dir: TrussArg = ".", *, keep: int = DEFAULT_KEEP, dry_run: bool = False,
            build_cache: bool = False, config: str | os.PathLike[str] | None = None,
            engine: Engine | None = None) -> CleanupReport:
    """Remove what pack left for the truss: its containers (stopped first), its weight-cache
    volumes (pack-weights-*, labelled with the truss), its images but the `keep` newest, and
    with build_cache pack's BuildKit cache mounts (pip, apt and weight downloads: shared by every
    truss, so only on request, and listed by what pack's build steps made them for, not by
    truss). dry_run: the same selection, nothing removed. A removal the engine refuses (a volume
    another container still uses) is reported in `failed`; the rest goes on."""
    if keep < 0:
        raise PackError(f"--keep {keep}: cannot keep fewer than no images", hint="use 0 or more")
    engine = engine or open_engine()
    _, selector = _target_selector(truss_dir, config)
    key = selector[LABEL_TRUSS]
    found = engine.list_containers(selector)
    volumes = [v for v in engine.list_volumes(runner.CACHE_VOLUME_PREFIX) if v.labels.get(LABEL_TRUSS) == key]
    images = sorted(engine.list_images(selector), key=lambda i: (i.created, i.id), reverse=True)
    cache = pack_cache_mounts(engine.build_cache()) if build_cache else []
    plan = ([(CleanupItem("container", c.name, c.state), c) for c in found]
            + [(CleanupItem("volume", v.name), v) for v in volumes]
            + [(_image_item(i), i) for i in images[keep:]]
            + [(CleanupItem("build-cache", e.id, e.description, e.size), e) for e in cache])
    kept = tuple(_image_item(i) for i in images[:keep])
    if dry_run:
        return CleanupReport(True, tuple(item for item, _ in plan), kept)
    removed: list[CleanupItem] = []
    failed: list[tuple[CleanupItem, str]] = []
    pruned = set(engine.prune_build_cache([e.id for e in cache])) if cache else set()
    for item, what in plan:
        try:
            if isinstance(what, ContainerInfo):
                handle = engine.container(what.id)
                if handle is not None:
                    runner.shut_down(handle)
            elif item.kind == "volume":
                engine.remove_volume(item.name)
            elif isinstance(what, ImageInfo):
                for ref in what.tags or (what.id,):
                    engine.remove_image(ref)
            elif item.name not in pruned:
                failed.append((item, "the build cache kept it (a build is using it)"))
                continue
        except EngineError as exc:
            failed.append((item, exc.message))
            continue
        removed.append(item)
    return CleanupReport(False, tuple(removed), kept, tuple(failed))
