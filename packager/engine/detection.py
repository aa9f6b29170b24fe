"""Finding the Docker engine and the best builder this machine offers.

Three builders, best first:
  1. BuildKit through `docker buildx` (any modern CLI with the buildx plugin);
  2. BuildKit through a CLI older than 23.0 that still has BuildKit built in and switches to
     it with DOCKER_BUILDKIT=1 (Debian bookworm's docker.io client is one);
  3. the classic builder through the Docker SDK, which every engine has.
Newer CLIs without buildx refuse DOCKER_BUILDKIT=1 builds outright, so the CLI is chosen by
asking each `docker` on PATH what it can do, never by its path or by assuming.
"""

from __future__ import annotations

import enum
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.engine.features import (
    BUILDKIT_FEATURES,
    CLASSIC_FEATURES,
    MODERN_FRONTEND_ENGINE_MAJOR,
    MODERN_FRONTEND_FEATURES,
    Feature,
)

# Names a CLI to use for BuildKit builds, ahead of every `docker` on PATH (CI machines with
# several clients installed).
PACK_DOCKER_CLI = "PACK_DOCKER_CLI"
_PROBE_TIMEOUT_S = 15
_DAEMON_TIMEOUT_S = 10


class BuilderKind(enum.Enum):
    BUILDX = "buildkit-buildx"
    BUILDKIT_CLI = "buildkit-legacy-cli"
    CLASSIC = "classic"
    NONE = "none"


@dataclass(frozen=True)
class CliProbe:
    """What one docker CLI said about itself."""

    path: str
    client_version: str | None
    buildx_version: str | None  # `docker buildx version` output, None when buildx is missing
    legacy_buildkit: bool  # `DOCKER_BUILDKIT=1 docker build --help` works and offers --secret
    note: str  # why it can or cannot build with BuildKit, for `pack doctor`-style output

    @property
    def buildkit(self) -> bool:
        return self.buildx_version is not None or self.legacy_buildkit


@dataclass(frozen=True)
class EngineInfo:
    builder: BuilderKind
    reason: str  # why this builder was chosen (or why there is none)
    server_version: str | None = None
    api_version: str | None = None
    docker_host: str | None = None
    cli: str | None = None  # the CLI BuildKit builds run through
    features: frozenset[Feature] = field(default_factory=frozenset)
    missing: tuple[str, ...] = ()  # what is lost compared with a modern BuildKit, for users
    probes: tuple[CliProbe, ...] = ()

    @property
    def available(self) -> bool:
        return self.builder is not BuilderKind.NONE

    @property
    def buildkit(self) -> bool:
        return self.builder in (BuilderKind.BUILDX, BuilderKind.BUILDKIT_CLI)

    def describe(self) -> str:
        """A few lines for humans: engine, builder, why, what is lost."""
        if not self.available:
            return f"no Docker engine: {self.reason}"
        lines = [
            f"engine: Docker {self.server_version} (API {self.api_version})"
            + (f" at {self.docker_host}" if self.docker_host else ""),
            f"builder: {self.builder.value}" + (f" via {self.cli}" if self.cli else ""),
            f"why: {self.reason}",
        ]
        if self.missing:
            lines.append("not available: " + "; ".join(self.missing))
        return "\n".join(lines)


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, env=env,
            stdin=subprocess.DEVNULL, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def _major(version: str | None) -> int | None:
    match = re.match(r"(\d+)\.", version or "")
    return int(match.group(1)) if match else None


def candidate_clis() -> list[str]:
    """Every distinct `docker` executable: $PACK_DOCKER_CLI first, then PATH order."""
    found: list[str] = []
    seen: set[str] = set()
    explicit = os.environ.get(PACK_DOCKER_CLI)
    paths = [explicit] if explicit else []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            paths.append(os.path.join(directory, "docker"))
    for path in paths:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            continue
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            found.append(path)
    return found


def probe_cli(path: str) -> CliProbe:
    """Ask one CLI whether it can build with BuildKit (no daemon needed for these questions)."""
    version = None
    out = _run([path, "--version"])
    if out is not None and out.returncode == 0:
        match = re.search(r"version ([^\s,]+)", out.stdout)
        version = match.group(1) if match else None

    out = _run([path, "buildx", "version"])
    if out is not None and out.returncode == 0 and out.stdout.strip():
        return CliProbe(path, version, out.stdout.strip(), False, "has buildx")

    # Clients before 23.0 carry BuildKit inside `docker build`; newer ones without buildx stop
    # with "BuildKit is enabled but the buildx component is missing or broken". The help text
    # under DOCKER_BUILDKIT=1 tells the two apart without building anything.
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    out = _run([path, "build", "--help"], env=env)
    helps = out is not None and out.returncode == 0 and "--secret" in out.stdout
    if helps:
        return CliProbe(path, version, None, True, "no buildx, but DOCKER_BUILDKIT=1 `docker build` works")
    why = "no buildx plugin"
    if out is not None and "buildx" in (out.stderr + out.stdout):
        why += ", and DOCKER_BUILDKIT=1 needs it with this client"
    return CliProbe(path, version, None, False, why)


def _daemon_version() -> tuple[dict[str, Any] | None, str]:
    import docker  # imported here: the in-image runtime imports packager without docker

    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=_DAEMON_TIMEOUT_S)
        try:
            return client.version(), ""
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - DockerException, socket and HTTP errors all mean "no engine"
        return None, f"at {host}: {_connection_cause(exc)}"


def _connection_cause(exc: BaseException) -> str:
    """The SDK wraps socket errors three deep; name the one that explains it."""
    text = str(exc)
    for marker, cause in (
        ("FileNotFoundError", "the socket does not exist (dockerd not running)"),
        ("ConnectionRefusedError", "connection refused (dockerd not running)"),
        ("PermissionError", "permission denied on the socket (root or the docker group needed)"),
        ("Read timed out", "the engine did not answer in time"),
    ):
        if marker in text:
            return cause
    return text.splitlines()[0] if text else type(exc).__name__


def _lost(features: frozenset[Feature]) -> tuple[str, ...]:
    full = BUILDKIT_FEATURES | MODERN_FRONTEND_FEATURES
    reasons = {
        Feature.SECRET_MOUNT: "secret mounts (build secrets cannot reach RUN steps without leaking)",
        Feature.CACHE_MOUNT: "cache mounts (pip/apt downloads are not kept between builds)",
        Feature.BUILD_SECRETS: "build secrets (--secret)",
    }
    return tuple(reasons.get(f, f.value) for f in sorted(full - features, key=lambda f: f.value))


def detect_engine(*, prefer: BuilderKind | None = None) -> EngineInfo:
    """What engine answers and which builder to use; never raises.

    prefer=BuilderKind.CLASSIC forces the classic builder (tests, or a broken BuildKit);
    preferring a BuildKit kind the machine lacks falls back to the best one found.
    """
    docker_host = os.environ.get("DOCKER_HOST")
    version, error = _daemon_version()
    if version is None:
        return EngineInfo(
            BuilderKind.NONE,
            f"no Docker engine answers {error}",
            docker_host=docker_host,
            missing=_lost(CLASSIC_FEATURES),
        )
    server = version.get("Version")
    api = version.get("ApiVersion")
    major = _major(server)
    buildkit_features = BUILDKIT_FEATURES | (
        MODERN_FRONTEND_FEATURES if major is not None and major >= MODERN_FRONTEND_ENGINE_MAJOR else frozenset()
    )
    common = {"server_version": server, "api_version": api, "docker_host": docker_host}

    probes = tuple(probe_cli(path) for path in candidate_clis()) if prefer is not BuilderKind.CLASSIC else ()
    if prefer is not BuilderKind.CLASSIC:
        choices = [(BuilderKind.BUILDX, p) for p in probes if p.buildx_version]
        choices += [(BuilderKind.BUILDKIT_CLI, p) for p in probes if p.legacy_buildkit]
        if prefer is BuilderKind.BUILDKIT_CLI:
            choices.sort(key=lambda choice: choice[0] is not BuilderKind.BUILDKIT_CLI)
        if choices:
            kind, probe = choices[0]
            why = f"{probe.path} (client {probe.client_version or 'of unknown version'}): {probe.note}"
            return EngineInfo(
                kind, why, cli=probe.path, features=buildkit_features,
                missing=_lost(buildkit_features), probes=probes, **common,
            )

    if prefer is BuilderKind.CLASSIC:
        why = "classic builder requested"
    elif not probes:
        why = "no docker CLI on PATH, so no BuildKit client; using the classic builder through the SDK"
    else:
        notes = "; ".join(f"{p.path}: {p.note}" for p in probes)
        why = f"no BuildKit-capable docker CLI ({notes}); using the classic builder through the SDK"
    return EngineInfo(
        BuilderKind.CLASSIC, why, features=CLASSIC_FEATURES, missing=_lost(CLASSIC_FEATURES), probes=probes, **common
    )


def default_socket_exists() -> bool:
    """Cheap pre-check used by test fixtures before paying for a full detection."""
    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return True  # tcp/ssh hosts: only a real call can tell
    return Path(host.removeprefix("unix://") or "/var/run/docker.sock").exists()

