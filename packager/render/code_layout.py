"""Where each file of a truss's code lands in its image, for whoever must put a file there without
a build (`pack watch` patches a running dev container).

The truss's model dir becomes app/model/, its data dir app/data/ (less the legacy credential
files), every package dir is merged into packages/; "app" is the image's /app and "packages" its
/packages (the runtime's RuntimePaths.app_dir and packages_dir). The config reaches app/ twice:
config.yaml for users and Truss tools, .pack/config.json for the runtime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import yaml

from packager import constants
from packager.plan.context_sources import ContextSources

Root = Literal["app", "packages"]
CONFIG_YAML = "config.yaml"
CONFIG_JSON = ".pack/config.json"


@dataclass(frozen=True)
class CodeDir:
    host_dir: Path
    root: Root
    prefix: str  # "model", "data", or "" (the packages root itself)
    excluded_top: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImagePath:
    root: Root
    path: str  # relative to the root, posix

    def __str__(self) -> str:
        return f"{self.root}:{self.path}"


def code_dirs(sources: ContextSources) -> tuple[CodeDir, ...]:
    dirs: list[CodeDir] = []
    if sources.model_dir:
        dirs.append(CodeDir(Path(sources.model_dir), "app", "model"))
    if sources.data_dir:
        dirs.append(CodeDir(Path(sources.data_dir), "app", "data", sources.data_excluded))
    dirs += [CodeDir(Path(d), "packages", "") for d in sources.package_dirs]
    return tuple(dirs)


def _skipped(sources: ContextSources, parts: tuple[str, ...]) -> bool:
    return any(p in sources.skip_names for p in parts) or parts[-1].endswith(sources.skip_suffixes)


def image_path(sources: ContextSources, host_path: Path) -> ImagePath | None:
    """Where the file at host_path is in the image, or None when no code dir copies it (outside
    them, or left out by the copy's skip rules). The last package dir that holds a path wins, as
    in the build context."""
    found: ImagePath | None = None
    for code_dir in code_dirs(sources):
        try:
            rel = host_path.relative_to(code_dir.host_dir)
        except ValueError:
            continue
        parts = rel.parts
        if not parts or _skipped(sources, parts) or parts[0] in code_dir.excluded_top:
            continue
        found = ImagePath(code_dir.root, str(PurePosixPath(code_dir.prefix, *parts)))
    return found


def host_file(sources: ContextSources, in_image: str) -> Path | None:
    """The truss file an absolute path inside the image came from (a traceback's file), or None
    for files that are not the truss's code (pack's runtime, installed packages)."""
    roots: dict[Root, str] = {"app": constants.APP_DIR, "packages": constants.PACKAGES_DIR}
    found: Path | None = None
    for code_dir in code_dirs(sources):
        base = PurePosixPath(roots[code_dir.root], code_dir.prefix)
        try:
            rel = PurePosixPath(in_image).relative_to(base)
        except ValueError:
            continue
        candidate = code_dir.host_dir.joinpath(*rel.parts)
        if found is None or candidate.exists():
            found = candidate
    return found


def config_files(sources: ContextSources) -> dict[str, bytes]:
    """The config documents under app/, as the build context writes them."""
    resolved = json.loads(sources.config_document)
    return {
        CONFIG_YAML: yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True).encode(),
        CONFIG_JSON: sources.config_document.encode(),
    }
