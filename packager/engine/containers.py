"""Running built images locally: start a container on the host network, wait until it answers.

Host network only: this machine (and CI) forbids bridge networks, so a container cannot have
its port remapped. The server inside is told which port to listen on instead
(INFERENCE_SERVER_PORT), and the URL is always 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from packager.constants import INFERENCE_SERVER_PORT, SECRETS_DIR
from packager.engine.docker_api import open_client
from packager.engine.failures import (
    FAILURE_TAIL_LINES,
    GPU_SETUP_HINT,
    NO_GPU_RUNTIME_MARKERS,
    GpuUnavailableError,
)
from packager.engine.requests import GpuRequest, RunRequest
from packager.errors import EngineError

if TYPE_CHECKING:
    import docker


def _device_requests(gpus: GpuRequest | None) -> list[Any]:
    from docker.types import DeviceRequest

    if gpus is None:
        return []
    # `docker run --gpus all` / `--gpus N`: the engine's nvidia device driver, count -1 = all.
    return [DeviceRequest(count=-1 if gpus.count is None else gpus.count, capabilities=[["gpu"]])]


def gpu_refusal(detail: str, gpus: GpuRequest | None) -> GpuUnavailableError | None:
    """The engine's start error as a GpuUnavailableError when it is about the GPU request."""
    if gpus is None or not any(marker in detail for marker in NO_GPU_RUNTIME_MARKERS):
        return None
    return GpuUnavailableError(f"the Docker engine cannot give the container {gpus}: {detail}",
                               detail=detail, hint=GPU_SETUP_HINT)


@runtime_checkable
class ContainerHandle(Protocol):
    id: str
    name: str
    url: str | None  # http://127.0.0.1:<port> when a port was chosen

    def status(self) -> str: ...  # "running", "exited", ...
    def exit_code(self) -> int | None: ...
    def logs(self, tail: int | None = None) -> str: ...
    # Its output line by line as it comes (the last `tail` lines first, or all of it), until the
    # container stops.
    def follow_logs(self, tail: int | None = None) -> Iterator[str]: ...
    def stop(self, timeout_s: int = 10) -> None: ...
    def remove(self) -> None: ...


@dataclass
class DockerContainer:
    id: str
    name: str
    url: str | None
    _client: Any  # docker.DockerClient; kept for follow-up calls

    def _container(self) -> Any | None:
        """The SDK container, None once it is gone (removed, or --rm'd on exit)."""
        import docker

        try:
            return self._client.containers.get(self.id)
        except docker.errors.NotFound:
            return None

    def status(self) -> str:
        container = self._container()
        return "removed" if container is None else str(container.status)

    def exit_code(self) -> int | None:
        container = self._container()
        state = container.attrs.get("State", {}) if container is not None else {}
        return None if not state or state.get("Running") else state.get("ExitCode")

    def logs(self, tail: int | None = None) -> str:
        container = self._container()
        if container is None:
            return ""
        raw: bytes = container.logs(tail=tail if tail is not None else "all")
        return raw.decode("utf-8", "replace")

    def follow_logs(self, tail: int | None = None) -> Iterator[str]:
        import docker

        # A client of its own, without a read timeout: a healthy server may say nothing for hours.
        client = open_client(timeout=None)
        try:
            try:
                stream = client.api.logs(self.id, stream=True, follow=True, tail=tail if tail is not None else "all")
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                raise EngineError(f"cannot read the output of {self.name}: {exc.explanation or exc}") from exc
            yield from split_lines(stream)
        finally:
            client.close()

    def stop(self, timeout_s: int = 10) -> None:
        import docker

        container = self._container()
        if container is None:
            return
        try:
            container.stop(timeout=timeout_s)
        except docker.errors.APIError as exc:
            raise EngineError(f"could not stop container {self.name}: {exc.explanation or exc}") from exc

    def remove(self) -> None:
        import docker

        container = self._container()
        if container is None:
            return
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise EngineError(f"could not remove container {self.name}: {exc.explanation or exc}") from exc


def split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Output chunks (cut anywhere, even inside a UTF-8 character) as text lines."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace").removesuffix("\r")
    if pending:
        yield pending.decode("utf-8", "replace")


def _secret_mounts(secrets_dir: str | Path) -> list[Any]:
    from docker.types import Mount

    directory = Path(secrets_dir)
    if not directory.is_dir():
        raise EngineError(f"secrets dir {directory} is not a directory", "one file per secret, named after it")
    # One read-only file mount per secret: the container sees exactly the named secrets at
    # /secrets/<name>, as on the platform, and cannot write them back.
    return [
        Mount(target=f"{SECRETS_DIR}/{path.name}", source=str(path.resolve()), type="bind", read_only=True)
        for path in sorted(directory.iterdir())
        if path.is_file() and not path.name.startswith(".")
    ]


def _volume_mounts(volumes: Mapping[str, str], labels: Mapping[str, str]) -> list[Any]:
    from docker.types import Mount

    mounts = []
    for source, target in volumes.items():
        read_only = target.endswith(":ro")
        target = target.removesuffix(":ro").removesuffix(":rw")
        # An absolute path is a host directory; anything else names a Docker volume (created on
        # first use), which is what the weight cache uses so a restart keeps its downloads.
        kind = "bind" if source.startswith("/") else "volume"
        # Labels reach a volume when this mount creates it (one that exists keeps its own).
        mounts.append(Mount(target=target, source=source, type=kind, read_only=read_only,
                            labels=(dict(labels) or None) if kind == "volume" else None))
    return mounts


def run_container(request: RunRequest, client: docker.DockerClient | None = None) -> DockerContainer:
    """Start `request.image` detached on the host network; see Engine.run."""
    import docker

    client = client or open_client()
    image, name, port, gpus = request.image, request.name, request.port, request.gpus
    environment = dict(request.env)
    if port is not None:
        environment.setdefault(INFERENCE_SERVER_PORT, str(port))
    mounts = _volume_mounts(request.volumes, request.labels)
    if request.secrets_dir:
        mounts = _secret_mounts(request.secrets_dir) + mounts
    try:
        # Checked first: containers.run would otherwise try to pull a missing image from a
        # registry, and `pack run` never pulls implicitly.
        client.images.get(image)
    except docker.errors.ImageNotFound as exc:
        raise EngineError(f"image {image} not found locally", "build it first (pack build)") from exc
    if name:
        try:
            existing = client.containers.get(name)
        except docker.errors.NotFound:
            existing = None
        if existing is not None:
            if not request.replace:
                raise EngineError(
                    f"a container named {name} already exists ({existing.status})",
                    hint=f"stop it with `docker rm -f {name}`, or ask to replace it",
                )
            existing.remove(force=True)
    try:
        container = client.containers.create(
            image, list(request.command) if request.command is not None else None, network_mode="host",
            environment=environment, mounts=mounts, name=name, device_requests=_device_requests(gpus),
            labels=dict(request.labels),
        )
    except docker.errors.ImageNotFound as exc:
        raise EngineError(f"image {image} not found locally", "build it first (pack build)") from exc
    except docker.errors.APIError as exc:
        raise EngineError(f"could not create a container from {image}: {exc.explanation or exc}") from exc
    try:
        container.start()
    except docker.errors.APIError as exc:
        # The engine created the container and refused to start it (a GPU request on an engine
        # without the NVIDIA runtime fails here): it must not stay behind in "Created".
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
        detail = str(exc.explanation or exc)
        raise gpu_refusal(detail, gpus) or EngineError(f"could not start {image}: {detail}") from exc
    url = f"http://127.0.0.1:{port}" if port is not None else None
    return DockerContainer(container.id, container.name, url, client)


def wait_ready(
    url: str,
    timeout: float,
    *,
    container: ContainerHandle | None = None,
    interval_s: float = 0.25,
    settled: Callable[[], bool] | None = None,
    readable: Callable[[str], str] = str,
) -> float:
    """Poll url until it answers 2xx; return the seconds it took.

    With a container, stop early (EngineError with its last log lines) when it exits: a crashed
    model server should not cost the whole timeout. `settled` ends the wait early too, without an
    error (a dev server whose model failed to load stays up and waits for a fix). `readable`
    turns each quoted log line into what a person reads (the server's JSON records).
    """
    start = time.monotonic()
    deadline = start + timeout
    last = "no answer yet"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=min(5.0, max(timeout, 0.1))) as response:
                if 200 <= response.status < 300:
                    return time.monotonic() - start
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"  # e.g. 503 while the model loads
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if settled is not None and settled():
            return time.monotonic() - start
        if container is not None and container.status() not in ("running", "created", "restarting"):
            code = container.exit_code()
            raise _not_ready(f"container {container.name} exited (code {code}) before {url} answered",
                             container, readable)
        if time.monotonic() >= deadline:
            raise _not_ready(f"{url} not ready after {timeout:.0f}s (last: {last})", container, readable)
        time.sleep(interval_s)


def _not_ready(message: str, container: ContainerHandle | None,
               readable: Callable[[str], str] = str) -> EngineError:
    if container is None:
        return EngineError(message)
    lines = "\n".join(readable(line) for line in container.logs(tail=FAILURE_TAIL_LINES).splitlines()).splitlines()
    text = message + ("\n" + "\n".join(f"  | {line}" for line in lines) if lines else "")
    return EngineError(text, hint=f"see all of it with `docker logs {container.name}`")
