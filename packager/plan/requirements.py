"""User requirements: a list, a pip file, a pyproject.toml or a uv.lock (truss-compat §4)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packager.config import TrussConfig
from packager.errors import PlanError
from packager.runtime.pip_names import canonical, requirement_name

from .model import Requirements


def _pip_lines(text: str) -> tuple[str, ...]:
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return tuple(lines)


def plan_requirements(config: TrussConfig, truss_dir: Path) -> Requirements:
    if config.requirements:
        return Requirements("list", tuple(r.strip() for r in config.requirements if r.strip()))
    if not config.requirements_file:
        return Requirements("none")
    path = truss_dir / config.requirements_file
    if path.name == "uv.lock":
        # Exported inside the build with uv (`uv export --frozen`), exactly as Truss does.
        return Requirements("uv_lock", source_file=config.requirements_file)
    if path.name == "pyproject.toml":
        try:
            project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
        except tomllib.TOMLDecodeError as exc:
            raise PlanError(f"{path}: invalid TOML: {exc}", hint="fix the file") from None
        deps = project.get("dependencies", [])
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise PlanError(f"{path}: [project].dependencies must be a list of strings",
                            hint='write dependencies = ["numpy>=2"]')
        return Requirements("pyproject", tuple(deps), config.requirements_file)
    for line in _pip_lines(path.read_text(encoding="utf-8")):
        if line.startswith(("-r ", "-c ", "--requirement", "--constraint")):
            raise PlanError(f"{path}: nested requirement files (`{line}`) are not carried into the image",
                            hint="inline the referenced file's lines")
    return Requirements("pip", _pip_lines(path.read_text(encoding="utf-8")), config.requirements_file)


def required_distributions(requirements: Requirements, truss_dir: Path) -> frozenset[str]:
    """Canonical names of the distributions the truss's own requirements install: the named lines
    of a list, pip file or pyproject, or every package a uv.lock pins (all of them are installed)."""
    if requirements.kind != "uv_lock":
        return frozenset(n for line in requirements.lines if (n := requirement_name(line)) is not None)
    path = truss_dir / (requirements.source_file or "uv.lock")
    try:
        packages = tomllib.loads(path.read_text(encoding="utf-8")).get("package", [])
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{path}: invalid TOML: {exc}", hint="regenerate it with `uv lock`") from None
    return frozenset(canonical(p["name"]) for p in packages if isinstance(p, dict) and isinstance(p.get("name"), str))
