"""BuildKit builds through a docker CLI (buildx, or a pre-23.0 client with DOCKER_BUILDKIT=1).

The Docker SDK cannot drive BuildKit (no session for secrets or the context upload), so this
backend runs the CLI chosen by detect_engine and reads its plain progress output. Image facts
afterwards come from the SDK.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from packager.engine.base import DockerEngineBase
from packager.engine.detection import BuilderKind, EngineInfo
from packager.engine.docker_api import image_tags_and_size, open_client
from packager.engine.build_logins import login_config_dir
from packager.engine.events import ProgressCallback, StepEvent, StepEventKind, ignore_progress
from packager.engine.failures import BuildFailedError
from packager.engine.images import BuiltImage
from packager.engine.plain_progress import PlainProgressParser
from packager.engine.preflight import check_build_inputs
from packager.engine.requests import BuildRequest, LayerCache
from packager.errors import EngineError

# BuildKit's answer when parallel steps race for one shared cache mount while it is created
# (many weight stages on an empty cache) or removed (a prune beside a build); a second run
# finds the mount in place.
TRANSIENT_FAILURE = "flightcontrol: exceeded retry timeout"

_EXIT_CODE = re.compile(
    r"(?:(?:did not complete successfully|executor failed running \[.*\]): exit code: "
    r"|returned a non-zero code: )(\d+)$"
)


# BuildKit's step for each --cache-from reference; it fails (and the build goes on without it)
# when the registry refuses or does not have the reference.
CACHE_IMPORT = "importing cache manifest from "


def cache_import_reason(message: str, ref: str) -> str:
    """The registry's answer in BuildKit's error ("... failed with status code [manifests x]:
    401 Unauthorized" -> "401 Unauthorized"), else the message without its prefix."""
    text = message.strip()
    if text.startswith(CACHE_IMPORT + ref):
        text = text[len(CACHE_IMPORT + ref):].lstrip(": ")
    text = text.rsplit("]: ", 1)[-1] if "]: " in text else text
    return text[len(ref):].lstrip(": ") if text.startswith(ref + ":") else text or "failed"


def cache_flags(builder: BuilderKind, cache: LayerCache) -> list[str]:
    """The CLI flags of a layer cache request. Pre-23.0 CLIs (DOCKER_BUILDKIT=1) have no
    --cache-to: their inline cache is a build argument the frontend reads; a registry export
    needs buildx (preflight refuses it elsewhere)."""
    flags: list[str] = []
    if builder is BuilderKind.BUILDX:
        for ref in cache.sources:
            flags += ["--cache-from", ref if "type=" in ref else f"type=registry,ref={ref}"]
        if cache.export_ref:
            flags += ["--cache-to", f"type=registry,ref={cache.export_ref},mode=max"]
        elif cache.inline:
            flags += ["--cache-to", "type=inline"]
        return flags
    for ref in cache.sources:
        flags += ["--cache-from", ref]
    if cache.inline:
        flags += ["--build-arg", "BUILDKIT_INLINE_CACHE=1"]
    return flags


def short_error(message: str) -> str:
    """'executor failed running [/bin/sh -c <the whole command>]: exit code: 3' -> 'exit code 3'.

    The step name already shows the command; repeating it makes long RUN lines unreadable.
    """
    match = _EXIT_CODE.search(message)
    return f"exit code {match.group(1)}" if match else message


def failure_hint(message: str) -> str | None:
    lowered = message.lower()
    if "pull access denied" in lowered or ("failed to resolve" in lowered and "docker.io" in lowered):
        return (
            "the base image is neither local nor pullable; `scripts/setup-dev.sh` builds the offline "
            "base image pack-base:bookworm-py311"
        )
    if "certificate verify failed" in lowered or "certificate_verify_failed" in lowered:
        return "the build cannot verify TLS; pass the proxy's CA bundle (PACK_CA_BUNDLE / --ca-bundle)"
    return None


class BuildKitEngine(DockerEngineBase):
    """Engine backed by BuildKit through the CLI in info.cli."""

    def __init__(self, info: EngineInfo):
        if not info.buildkit or not info.cli:
            raise EngineError(f"BuildKitEngine needs a BuildKit CLI; detection found {info.builder.value}")
        super().__init__(info)

    def _argv(
        self,
        inputs_dockerfile: Path,
        context: Path,
        iidfile: Path,
        *,
        tag: str | None,
        secrets: Mapping[str, Path],
        build_args: Mapping[str, str],
        no_cache: bool,
        platform: str | None,
        network: str,
        labels: Mapping[str, str],
        cache: LayerCache | None = None,
    ) -> list[str]:
        assert self.info.cli is not None
        argv = [self.info.cli]
        # buildx may drive a builder outside the engine; --load brings the image back to it.
        argv += ["buildx", "build", "--load"] if self.info.builder is BuilderKind.BUILDX else ["build"]
        argv += ["--progress=plain", "--iidfile", str(iidfile), "-f", str(inputs_dockerfile)]
        argv += ["--network", network]
        if tag:
            argv += ["-t", tag]
        if no_cache:
            argv.append("--no-cache")
        if platform:
            argv += ["--platform", platform]
        for key, value in build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in labels.items():
            argv += ["--label", f"{key}={value}"]
        if cache is not None:
            argv += cache_flags(self.info.builder, cache)
        for name, src in secrets.items():
            # The value travels through BuildKit's session as a file and lives only in the
            # tmpfs mount of the steps that ask for it: never in a layer, the history or the cache.
            source = src.resolve()
            if any(c in str(source) for c in ',="'):
                # The flag is CSV: a path with a comma or quote would be cut; link it somewhere plain.
                link = iidfile.parent / f"secret-{name}"
                link.symlink_to(source)
                source = link
            argv += ["--secret", f"id={name},src={source}"]
        argv.append(str(context))
        return argv

    def _run(self, argv: list[str], env: Mapping[str, str],
             callback: ProgressCallback) -> tuple[int, PlainProgressParser]:
        parser = PlainProgressParser()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, errors="replace", bufsize=1, env=env,
            )
        except OSError as exc:
            raise EngineError(f"cannot run {self.info.cli}: {exc}") from exc
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                for event in parser.feed(line):
                    callback(event)
            return proc.wait(), parser
        except BaseException:
            # A callback error or Ctrl-C must not leave a build running in the background.
            proc.kill()
            proc.wait()
            raise

    def build(self, request: BuildRequest, progress: ProgressCallback | None = None) -> BuiltImage:
        inputs = check_build_inputs(self.info, request)
        callback = progress or ignore_progress
        client = open_client()
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="pack-build-") as tmp:
            iidfile = Path(tmp) / "image-id"
            argv = self._argv(
                inputs.dockerfile, inputs.context_dir, iidfile, tag=request.tag, secrets=inputs.secrets,
                build_args=request.build_args, no_cache=request.no_cache, platform=request.platform,
                network=request.network, labels=request.labels, cache=request.cache,
            )
            # DOCKER_BUILDKIT=1 switches a pre-23.0 client to BuildKit; buildx ignores it.
            env = dict(os.environ, DOCKER_BUILDKIT="1", BUILDKIT_PROGRESS="plain")
            if request.logins:
                env["DOCKER_CONFIG"] = str(login_config_dir(Path(tmp) / "docker-config", request.logins))
            unavailable: dict[str, str] = {}

            def watch(event: StepEvent) -> None:
                if event.kind is StepEventKind.ERROR and event.name.startswith(CACHE_IMPORT):
                    ref = event.name[len(CACHE_IMPORT):].strip()
                    unavailable[ref] = cache_import_reason(event.line or "", ref)
                callback(event)

            retried = ""
            for attempt in range(2):
                returncode, parser = self._run(argv, env, watch)
                if returncode == 0 or attempt or TRANSIENT_FAILURE not in parser.failure().message:
                    break
                # Completed steps are cached by now: the second run redoes only what the race broke
                # (a download step cut short fetches the files it had in flight again).
                retried = short_error(parser.failure().message)
            if returncode != 0:
                failure = parser.failure()
                short = short_error(failure.message)
                where = f" at step {failure.step}" if failure.step else ""
                raise BuildFailedError(
                    f"build failed{where}: {short}",
                    step=failure.step,
                    log_tail=failure.log_tail,
                    hint=failure_hint(failure.message + "\n" + "\n".join(failure.log_tail)),
                )
            try:
                image_id = iidfile.read_text().strip()
            except OSError as exc:
                raise EngineError("the build succeeded but reported no image id") from exc
        image_id, tags, size, layers = image_tags_and_size(client, image_id)
        built, cached = parser.steps()
        return BuiltImage(
            id=image_id, tags=tags, size=size, layers=layers, built_steps=tuple(built), cached_steps=tuple(cached),
            duration_s=time.monotonic() - started, builder=self.info.builder.value, retried=retried,
            cache=request.cache, cache_unavailable=tuple(sorted(unavailable.items())),
        )

