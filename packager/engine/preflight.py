"""Checks every backend runs before it starts a build, so mistakes fail fast and clearly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packager.engine.detection import BuilderKind, EngineInfo
from packager.engine.failures import MissingCapabilityError
from packager.engine.features import (
    Feature,
    FeatureUse,
    missing_features,
    scan_dockerfile,
    secret_mount_ids,
)
from packager.engine.requests import BuildRequest, LayerCache
from packager.errors import EngineError

# BuildKit parses `--secret id=..,src=..` as CSV, so ids stay simple.
_SECRET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class BuildInputs:
    context_dir: Path
    dockerfile: Path
    text: str  # the Dockerfile's content
    secrets: dict[str, Path]


def check_build_inputs(info: EngineInfo, request: BuildRequest) -> BuildInputs:
    context, dockerfile, secrets = Path(request.context_dir), request.dockerfile, request.secrets
    if not context.is_dir():
        raise EngineError(f"build context {context} is not a directory")
    path = Path(dockerfile)
    if not path.is_absolute():
        path = context / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EngineError(f"cannot read Dockerfile {path}: {exc.strerror or exc}") from exc

    given: dict[str, Path] = {}
    for name, src in (secrets or {}).items():
        if not _SECRET_ID.match(name):
            raise EngineError(
                f"build secret name {name!r} is not usable as a BuildKit secret id",
                hint="use letters, digits, '.', '_' and '-' only",
            )
        src_path = Path(src)
        if not src_path.is_file():
            raise EngineError(
                f"build secret '{name}': {src_path} is not a readable file",
                hint="write the secret's value to that file (one file per secret)",
            )
        given[name] = src_path

    uses = scan_dockerfile(text)
    if given:
        # Handing secrets to a builder that cannot mount them must not silently drop them.
        uses.append(FeatureUse(Feature.BUILD_SECRETS, 0, f"--secret {','.join(sorted(given))}"))
    lacking = missing_features(uses, info.features)
    if lacking:
        names = [use.feature.value for use in lacking]
        where = "".join(
            f"\n  - {use.feature.value}: "
            + (f"Dockerfile line {use.line}: {use.instruction}" if use.line else use.instruction)
            for use in lacking
        )
        raise MissingCapabilityError(
            f"the {info.builder.value} builder cannot build {path.name}, which needs: {', '.join(names)}{where}",
            missing=names,
            hint=_capability_hint(info, lacking),
        )

    for line, secret_id, required in secret_mount_ids(text):
        if secret_id not in given:
            raise EngineError(
                f"Dockerfile line {line} mounts build secret '{secret_id}' but no value was given for it",
                hint=f"pass the secret '{secret_id}' (a file holding its value) to the build"
                + ("" if required
                   else "; without it BuildKit would mount nothing and the step would run unauthenticated"),
            )
    _check_cache(info, request.cache)
    return BuildInputs(context, path, text, given)


def _check_cache(info: EngineInfo, cache: LayerCache) -> None:
    for ref in (*cache.sources, *([cache.export_ref] if cache.export_ref else [])):
        if not ref or any(c.isspace() for c in ref) or ref.startswith("-"):
            raise EngineError(f"layer cache reference {ref!r} is not an image reference",
                              hint="give REGISTRY/NAME[:TAG], e.g. registry.example.com/team/model:main")
    if cache.export_ref and info.builder is not BuilderKind.BUILDX:
        raise MissingCapabilityError(
            f"the {info.builder.value} builder cannot export a registry cache (--cache-to {cache.export_ref})",
            missing=["registry cache export"],
            hint="only buildx exports one; this builder writes the inline cache (the default): push the "
                 "image and build with --cache-from IMAGE",
        )
    if cache.sources and not info.buildkit:
        raise MissingCapabilityError(
            "the classic builder cannot import a layer cache from a registry (--cache-from)",
            missing=["registry cache import"], hint=_capability_hint(info, []),
        )


def _capability_hint(info: EngineInfo, lacking: list[FeatureUse]) -> str:
    if not info.buildkit:
        return (
            "install a docker CLI with the buildx plugin, or use a client older than 23.0 with "
            "DOCKER_BUILDKIT=1 (Debian's docker.io); " + info.reason
        )
    return (
        f"Docker {info.server_version}'s built-in Dockerfile frontend is too old for these; "
        "use Docker Engine 23.0 or later, or render the Dockerfile without them"
    )
