"""FakeEngine: an in-memory Engine for tests of code above the engine (CLI, build orchestration).

It runs the same preflight as the real backends (so missing secrets or BuildKit-only syntax fail
the same way), reports one step per Dockerfile instruction through the progress callback, and
imitates the layer cache: a step is cached when it and everything before it (including the
content of the files its COPY/ADD names) match an earlier build. Nothing touches Docker.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from dataclasses import dataclass, field, replace
from pathlib import Path

from packager.engine.containers import gpu_refusal
from packager.engine.detection import BuilderKind, EngineInfo
from packager.engine.events import (
    ProgressCallback,
    StepEvent,
    StepEventKind,
    ignore_progress,
)
from packager.engine.failures import BuildFailedError, PushStreamError
from packager.engine.features import (
    BUILDKIT_FEATURES,
    MODERN_FRONTEND_FEATURES,
    Feature,
    parse_instructions,
)
from packager.engine.images import BuiltImage
from packager.engine.inventory import CacheEntry, ContainerInfo, ImageInfo, VolumeInfo
from packager.engine.preflight import check_build_inputs
from packager.engine.requests import BuildRequest, GpuRequest, PushRequest, RunRequest
from packager.errors import EngineError


@dataclass(frozen=True)
class FakeBuild:
    """One build request as the fake saw it (secret values are not kept, only their names)."""

    context_dir: Path
    tag: str | None
    secret_names: tuple[str, ...]
    build_args: dict[str, str]
    no_cache: bool
    platform: str | None
    network: str
    image: BuiltImage | None  # None when the build failed
    login_registries: tuple[str, ...] = ()  # registries the build was given a login for (never the password)


@dataclass
class FakeContainer:
    id: str
    name: str
    url: str | None
    image: str
    env: dict[str, str]
    secrets: dict[str, str]  # /secrets/<name> -> host path
    volumes: dict[str, str]
    command: list[str] | None
    gpus: GpuRequest | None = None
    log_text: str = ""
    state: str = "running"
    code: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    created: float = 0.0

    def status(self) -> str:
        return self.state

    def exit_code(self) -> int | None:
        return self.code

    def say(self, line: str) -> None:
        """The server inside printed `line`."""
        self.log_text += line + "\n"

    def logs(self, tail: int | None = None) -> str:
        lines = self.log_text.splitlines()
        return "\n".join(lines[max(0, len(lines) - tail):] if tail is not None else lines)

    def follow_logs(self, tail: int | None = None) -> Iterator[str]:
        """As docker follows a container's output: what it said so far, then every new line,
        until it stops."""
        lines = self.log_text.splitlines()
        sent = max(0, len(lines) - tail) if tail is not None else 0
        while True:
            running = self.state == "running"
            lines = self.log_text.splitlines()
            yield from lines[sent:]
            sent = len(lines)
            if not running:
                return
            time.sleep(0.01)

    def stop(self, timeout_s: int = 10) -> None:
        if self.state == "running":
            self.state, self.code = "exited", 0

    def remove(self) -> None:
        self.state = "removed"


def _hash_sources(context: Path, sources: list[str]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        path = context / source
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(context)).encode())
            digest.update(file.read_bytes() if file.is_file() else b"<missing>")
    return digest.hexdigest()


@dataclass
class FakeEngine:
    """Engine double. `fail_on`: a step whose instruction contains this text fails.

    GPUs: `nvidia_runtime=False` refuses every GPU request the way Docker without the NVIDIA
    Container Toolkit does; with it, a request for more than `gpu_count` GPUs fails as the
    toolkit's hook does. `images` may be seeded with base images (their `user` is what
    builder.base_image_facts reads)."""

    features: frozenset[Feature] = BUILDKIT_FEATURES | MODERN_FRONTEND_FEATURES
    builder: BuilderKind = BuilderKind.BUILDX
    fail_on: str | None = None
    fail_output: tuple[str, ...] = ("fake failure output",)
    image_size: int = 1_000_000
    nvidia_runtime: bool = True
    gpu_count: int = 1
    builds: list[FakeBuild] = field(default_factory=list)
    containers: list[FakeContainer] = field(default_factory=list)
    images: dict[str, BuiltImage] = field(default_factory=dict)  # by tag and by id
    registry: dict[str, BuiltImage] = field(default_factory=dict)  # what pull() can fetch; push() adds
    pulls: list[str] = field(default_factory=list)
    pushes: list[PushRequest] = field(default_factory=list)
    push_error: str | None = None  # the registry's error line every push then ends with
    volumes: dict[str, VolumeInfo] = field(default_factory=dict)  # named volumes, created by run()
    image_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # image id -> labels
    # BuildKit cache records: each cache mount a build's steps use, described as Docker 20.10
    # describes it (the target and the first command, no id).
    cache: list[CacheEntry] = field(default_factory=list)
    _layers: set[str] = field(default_factory=set)
    _created: dict[str, float] = field(default_factory=dict)  # image id -> a build counter
    _clock: float = 0.0

    def _tick(self) -> float:
        self._clock += 1.0
        return self._clock

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(
            self.builder, "fake engine for tests", server_version="fake", api_version="fake",
            cli="fake-docker" if self.builder is not BuilderKind.CLASSIC else None, features=self.features,
        )

    def build(self, request: BuildRequest, progress: ProgressCallback | None = None) -> BuiltImage:
        inputs = check_build_inputs(self.info, request)
        callback = progress or ignore_progress
        tag, no_cache = request.tag, request.no_cache
        record = FakeBuild(
            inputs.context_dir, tag, tuple(sorted(inputs.secrets)), dict(request.build_args), no_cache,
            request.platform, request.network, image=None,
            login_registries=tuple(login.registry for login in request.logins),
        )
        instructions = parse_instructions(inputs.text)
        total = len(instructions)
        key = hashlib.sha256(repr(sorted(request.build_args.items())).encode()).hexdigest()
        built: list[str] = []
        cached: list[str] = []
        for number, ins in enumerate(instructions, start=1):
            name = f"[{number}/{total}] {ins.keyword} {' '.join((*ins.flags, ins.rest))}".rstrip()
            material = f"{key}|{ins.keyword}|{ins.flags}|{ins.rest}"
            if ins.keyword in {"COPY", "ADD"} and not any(f.startswith("--from") for f in ins.flags):
                material += _hash_sources(inputs.context_dir, ins.rest.split()[:-1])
            key = hashlib.sha256(material.encode()).hexdigest()

            def emit(
                kind: StepEventKind, line: str | None = None, hit: bool = False, number: int = number, name: str = name
            ) -> None:
                callback(StepEvent(kind, f"#{number}", name, step=number, total=total, cached=hit, line=line))

            emit(StepEventKind.STARTED)
            if ins.keyword == "FROM":
                emit(StepEventKind.DONE)
                continue
            if key in self._layers and not no_cache:
                cached.append(name)
                emit(StepEventKind.CACHED, hit=True)
                continue
            if self.fail_on and self.fail_on in f"{ins.keyword} {ins.rest}":
                for line in self.fail_output:
                    emit(StepEventKind.LOG, line)
                emit(StepEventKind.ERROR, "exit code: 1")
                self.builds.append(record)
                raise BuildFailedError(
                    f"build failed at step {name}: exit code 1", step=name, log_tail=list(self.fail_output)
                )
            if ins.keyword == "RUN":
                emit(StepEventKind.LOG, f"fake run: {ins.rest}")
                self._use_cache_mounts(ins.flags, ins.rest)
            self._layers.add(key)
            built.append(name)
            emit(StepEventKind.DONE, hit=False)
        # Labels are part of the image config, so of its id (not of any layer).
        labels = dict(request.labels)
        image_id = "sha256:" + hashlib.sha256(f"{key}|{sorted(labels.items())}".encode()).hexdigest()
        tags = (tag,) if tag else ()
        # A cache reference the fake registry does not hold is skipped, as BuildKit skips it.
        missing = tuple((ref, "not found") for ref in request.cache.sources if ref not in self.registry)
        image = BuiltImage(image_id, tags, self.image_size, tuple(built), tuple(cached), 0.0, self.builder.value,
                           cache=request.cache, cache_unavailable=missing)
        self.images[image_id] = image
        self.image_labels[image_id] = labels
        self._created.setdefault(image_id, self._tick())
        if tag:
            self.images[tag] = image
        self.builds.append(replace(record, image=image))
        return image

    def image(self, ref: str) -> BuiltImage | None:
        return self.images.get(ref)

    def pull(self, ref: str) -> BuiltImage:
        image = self.registry.get(ref)
        if image is None:
            raise EngineError(f"cannot pull {ref}: not found in the fake registry")
        self.pulls.append(ref)
        self.images[ref] = image
        return image

    def push(self, request: PushRequest) -> Iterator[dict[str, Any]]:
        """What docker's push stream says: layer progress, then the manifest digest (or, with
        `push_error`, the registry's error line)."""
        image = self.images.get(request.image)
        if image is None:
            raise PushStreamError(f"no such image: {request.image}")
        self.pushes.append(request)
        yield {"status": "Pushing", "progressDetail": {"current": 1, "total": 1}, "id": image.id[7:19]}
        if self.push_error is not None:
            yield {"error": self.push_error, "errorDetail": {"message": self.push_error}}
            return
        digest = "sha256:" + hashlib.sha256(f"{image.id}|{request.repository}:{request.tag}".encode()).hexdigest()
        self.registry[f"{request.repository}:{request.tag}"] = image
        yield {"status": f"{request.tag}: digest: {digest} size: 1234"}
        yield {"aux": {"Tag": request.tag, "Digest": digest, "Size": 1234}}

    def run(self, request: RunRequest) -> FakeContainer:
        image, name, port, gpus = request.image, request.name, request.port, request.gpus
        if image not in self.images:
            raise EngineError(f"image {image} not found locally", "build it first (pack build)")
        if gpus is not None:
            # Docker's own words (20.10, HTTP 500 from container start) and the toolkit hook's.
            if not self.nvidia_runtime:
                detail = 'could not select device driver "" with capabilities: [[gpu]]'
            elif gpus.count is not None and gpus.count > self.gpu_count:
                detail = (f"OCI runtime create failed: error running hook #0: nvidia-container-cli: "
                          f"device error: {self.gpu_count}: unknown device")
            else:
                detail = ""
            refusal = gpu_refusal(detail, gpus) if detail else None
            if refusal is not None:
                raise refusal
        live = [c for c in self.containers if c.name == name and c.state != "removed"] if name else []
        if live and not request.replace:
            raise EngineError(f"a container named {name} already exists ({live[0].state})")
        for old in live:
            old.remove()
        secrets: dict[str, str] = {}
        if request.secrets_dir:
            secrets = {
                f"/secrets/{p.name}": str(p) for p in sorted(Path(request.secrets_dir).iterdir()) if p.is_file()
            }
        for source in request.volumes:
            if not source.startswith("/") and source not in self.volumes:
                self.volumes[source] = VolumeInfo(source, dict(request.labels))
        number = len(self.containers) + 1
        container = FakeContainer(
            id=f"fake{number:060d}", name=name or f"fake-{number}",
            url=f"http://127.0.0.1:{port}" if port is not None else None, image=self.images[image].id,
            env=dict(request.env), secrets=secrets, volumes=dict(request.volumes),
            command=list(request.command) if request.command is not None else None, gpus=gpus,
            labels={**self.image_labels.get(self.images[image].id, {}), **request.labels}, created=self._tick(),
        )
        self.containers.append(container)
        return container

    # --- what the engine holds ---------------------------------------------------------------
    def _live(self) -> list[FakeContainer]:
        return [c for c in self.containers if c.state != "removed"]

    def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        return [ContainerInfo(c.id, c.name, c.image, c.state, c.created, dict(c.labels))
                for c in self._live() if all(c.labels.get(k) == v for k, v in labels.items())]

    def container(self, ref: str) -> FakeContainer | None:
        return next((c for c in self._live() if ref in (c.id, c.name)), None)

    def list_volumes(self, prefix: str) -> list[VolumeInfo]:
        return sorted((v for name, v in self.volumes.items() if name.startswith(prefix)), key=lambda v: v.name)

    def remove_volume(self, name: str) -> None:
        users = [c.name for c in self._live() if name in c.volumes]
        if users:
            raise EngineError(f"cannot remove volume {name}: volume is in use - [{', '.join(users)}]")
        self.volumes.pop(name, None)

    def list_images(self, labels: Mapping[str, str]) -> list[ImageInfo]:
        found = []
        for image_id, image_labels in self.image_labels.items():
            if image_id not in self.images or not all(image_labels.get(k) == v for k, v in labels.items()):
                continue
            tags = tuple(sorted(t for t, i in self.images.items() if i.id == image_id and t != image_id))
            found.append(ImageInfo(image_id, tags, self._created[image_id], self.image_size, dict(image_labels)))
        return sorted(found, key=lambda i: (i.created, i.id))

    def remove_image(self, ref: str) -> None:
        image = self.images.get(ref)
        if image is None:
            return
        tags = [t for t, i in self.images.items() if i.id == image.id and t != image.id]
        if ref == image.id and tags:
            raise EngineError(f"cannot remove image {ref}: it is referenced in multiple repositories (must force)")
        users = [c.name for c in self._live() if c.image == image.id]
        if users and (ref == image.id or tags == [ref]):
            raise EngineError(f"cannot remove image {ref}: container {users[0]} is using it")
        del self.images[ref]
        if ref != image.id and tags == [ref]:
            del self.images[image.id]

    def build_cache(self) -> list[CacheEntry]:
        return list(self.cache)

    def prune_build_cache(self, ids: Iterable[str]) -> list[str]:
        wanted = set(ids)
        removed = [e.id for e in self.cache if e.id in wanted and not e.in_use]
        self.cache = [e for e in self.cache if e.id not in removed]
        return removed

    def _use_cache_mounts(self, flags: tuple[str, ...], command: str) -> None:
        for flag in flags:
            options = dict(o.partition("=")[::2] for o in flag.partition("=")[2].split(","))
            if not flag.startswith("--mount=") or options.get("type") != "cache":
                continue
            key = options.get("id") or options.get("target", "")
            if any(e.id.startswith(f"fake-{key}-") for e in self.cache):
                continue
            self.cache.append(CacheEntry(f"fake-{key}-{len(self.cache)}", "exec.cachemount",
                                         f"cached mount {options.get('target')} from exec /bin/sh -c {command}",
                                         1000, False))
