"""What an edit to a watched truss asks of its running dev container: nothing, a patch of code
files and a reload in place, or a rebuild and a restart.

The plan decides what goes into an image, so the decision compares plans: the one the running
container was built from and one made again from the truss as it is now. When they differ in
anything but the config keys the runtime reads at each load (LIVE_CONFIG), the image is stale and
must be rebuilt; otherwise the changed code files (and the config documents, when only live keys
changed) are patched in. Planning again is cheap (milliseconds, offline against pack.lock), and it
catches what a list of "build files" would miss: a code edit that newly imports truss changes the
server packages layer, an edit of requirements.txt changes the requirements.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.plan.model import BuildPlan
from packager.render.code_layout import ImagePath, config_files, image_path

# Config keys the runtime reads again at every load (packager/runtime/serving/app_config.py and
# Model(config=...)): a change to them is applied by a reload. Everything else in the config
# shapes the image or the container and needs a rebuild.
LIVE_CONFIG: frozenset[tuple[str, ...]] = frozenset({
    ("model_metadata",),
    ("description",),
    ("model_class_name",),
    ("model_class_filename",),
    ("examples_filename",),
    ("runtime", "predict_concurrency"),
    ("runtime", "streaming_read_timeout"),
})

# How a plan difference reads to the user, by BuildPlan field.
_FIELD_REASONS = {
    "base": "the base image changed",
    "system_packages": "system_packages changed",
    "requirements": "the requirements changed",
    "server_packages": "the code's imports of Truss's server packages changed",
    "weights_mode": "the weights mode changed",
    "prefetch_manifest": "the weights changed",
    "manifest": "the weights changed",
    "weight_layers": "the weights changed",
    "build_commands_before_code": "build_commands changed",
    "build_commands_after_code": "build_commands changed",
    "build_secret_names": "the build secrets changed",
    "external_data": "external_data changed",
    "docker_server": "docker_server changed",
    "image_env": "environment_variables changed",
    "accelerator": "resources.accelerator changed",
    "runtime_user": "the user the server runs as changed",
}


@dataclass(frozen=True)
class CodeFile:
    """One file to put into the container (source set) or remove from it (source None)."""

    target: ImagePath
    source: Path | None


@dataclass(frozen=True)
class Patch:
    files: tuple[CodeFile, ...]
    config: dict[str, bytes]  # app-relative path -> content; empty when the config did not change
    changed: tuple[str, ...]  # what the user edited, truss-relative, for messages


@dataclass(frozen=True)
class Rebuild:
    reason: str  # one line: "requirements.txt changed: rebuilding"


@dataclass(frozen=True)
class Unchanged:
    """Nothing the image or the running server uses was edited (a README, a test file)."""


Change = Patch | Rebuild | Unchanged


def _leaves(doc: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(doc, dict) and doc:
        for key, value in doc.items():
            yield from _leaves(value, (*prefix, str(key)))
    else:
        yield prefix, json.dumps(doc, sort_keys=True)


def changed_config_keys(old_document: str, new_document: str) -> list[tuple[str, ...]]:
    """The key paths (down to the leaves) whose values differ between two config documents."""
    old, new = dict(_leaves(json.loads(old_document))), dict(_leaves(json.loads(new_document)))
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def _is_live(key: tuple[str, ...]) -> bool:
    return any(key[:len(live)] == live for live in LIVE_CONFIG)


def _plan_difference(old: BuildPlan, new: BuildPlan) -> str | None:
    """The first BuildPlan field (besides the config document) that differs, as a reason."""
    def comparable(plan: BuildPlan) -> BuildPlan:
        # config_digest and notes follow the config document, whose keys are judged apart.
        sources = dataclasses.replace(plan.sources, config_document="", literal_secret_values=frozenset())
        # A file the import scan cannot parse (a syntax error being fixed) says nothing about the
        # image: only the packages found decide it.
        packages = dataclasses.replace(plan.server_packages, unscanned=())
        return dataclasses.replace(plan, sources=sources, config_digest="", notes=(), server_packages=packages)

    a, b = comparable(old), comparable(new)
    if a == b:
        return None
    for field in dataclasses.fields(BuildPlan):
        if getattr(a, field.name) != getattr(b, field.name):
            return _FIELD_REASONS.get(field.name, f"the build plan's {field.name} changed")
    return "the build plan changed"


def _expand(edited: Iterable[Path]) -> list[Path]:
    """Edited paths as files: a directory that appeared (moved or copied in whole) stands for
    every file in it; a path that is gone stays as itself (a deleted file or directory)."""
    files: set[Path] = set()
    for path in edited:
        if path.is_dir():
            files.update(p for p in path.rglob("*") if p.is_file())
        else:
            files.add(path)
    return sorted(files)


def display_path(truss_dir: Path, path: Path) -> str:
    try:
        return path.relative_to(truss_dir).as_posix()
    except ValueError:
        return str(path)


def classify(old: BuildPlan, new: BuildPlan, edited: Iterable[Path]) -> Change:
    """What the edited files (absolute paths, existing or deleted) ask of a container running an
    image of `old`, given `new`, the plan of the truss as it is now."""
    truss_dir = Path(new.sources.truss_dir)
    edited = _expand(edited)
    names = [display_path(truss_dir, p) for p in edited]
    config_file = Path(new.sources.config_file)
    keys = changed_config_keys(old.sources.config_document, new.sources.config_document)
    rebuild_keys = [k for k in keys if not _is_live(k)]
    if rebuild_keys:
        shown = ", ".join(".".join(k) for k in rebuild_keys[:3]) + (" ..." if len(rebuild_keys) > 3 else "")
        return Rebuild(f"{display_path(truss_dir, config_file)}: {shown} changed: rebuilding")
    reason = _plan_difference(old, new)
    if reason is not None:
        # Name the edited file when there is one obvious culprit (requirements.txt, uv.lock).
        inputs = [n for p, n in zip(edited, names, strict=True) if image_path(new.sources, p) is None]
        culprit = f"{inputs[0]} changed" if len(inputs) == 1 else reason
        return Rebuild(f"{culprit}: rebuilding")
    uv_and_certs = {Path(p) for p in (*(new.sources.uv_project or ()), new.sources.ca_bundle or "") if p}
    for path, name in zip(edited, names, strict=True):
        if path in uv_and_certs:  # read by the build, never part of the plan's values
            return Rebuild(f"{name} changed: rebuilding")
    files = []
    for path in edited:
        target = image_path(new.sources, path)
        if target is not None:
            files.append(CodeFile(target, path if path.is_file() else None))
    config = config_files(new.sources) if keys else {}
    if not files and not config:
        return Unchanged()
    applied = tuple(n for p, n in zip(edited, names, strict=True)
                    if image_path(new.sources, p) is not None or p == config_file)
    return Patch(tuple(files), config, applied)
