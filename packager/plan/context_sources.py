"""What of the truss (and of pack) a build context is made from, decided here so that rendering is
a function of the plan alone: the directories and files to copy, what stays out of them, the
resolved config document, and the literal secret values no file of the context may contain."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import packager.runtime
from packager.config import LoadedConfig
from packager.errors import PlanError

from .model import DockerServerPlan, Requirements
from .truss_server_packages import PACK_SERVER_REQUIREMENTS

# Never part of an image, wherever they are in a copied tree: VCS data, virtualenvs, caches.
SKIP_NAMES = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".mypy_cache", ".pytest_cache",
                        ".ruff_cache", ".DS_Store", "node_modules", ".ipynb_checkpoints"})
SKIP_SUFFIXES = (".pyc", ".pyo")
# Legacy Truss bake-mode credential files: usable for the build, never shipped (defect 3).
LEGACY_CREDENTIAL_FILES = ("s3_credentials.json", "service_account.json")
# The subpackage of packager.runtime only dev images carry (`pack watch`'s reload control): every
# other copy of the runtime leaves it out, so an image from `pack build` has no reload endpoint.
DEV_RUNTIME_PACKAGE = "dev"


def dev_runtime_dir() -> Path:
    return Path(packager.runtime.__file__).parent / DEV_RUNTIME_PACKAGE


def installer_uv() -> str | None:
    """The uv binary of pack's own environment (a dependency of pack). The build binds it into its
    install steps instead of installing it into the image; without one, they install with pip."""
    try:
        from uv import find_uv_bin
        return os.path.realpath(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return None


@dataclass(frozen=True)
class ContextSources:
    """Host paths (absolute) and documents a render copies and writes."""

    truss_dir: str
    config_file: str
    model_dir: str | None  # copied to model/
    data_dir: str | None  # copied to data/, without data_excluded at its top level
    data_excluded: tuple[str, ...]
    package_dirs: tuple[str, ...]  # their contents merged into packages/
    uv_project: tuple[str, str] | None  # (uv.lock, pyproject.toml) exported inside the build
    ca_bundle: str | None
    server_requirements: tuple[str, ...]  # pack's server layer (pip requirement lines)
    config_document: str  # the resolved config as JSON: app/config.yaml and app/.pack/config.json
    dev_runtime: str | None = None  # packager/runtime/dev, copied into dev images only
    uv_binary: str | None = None  # the uv pack runs with, bound into the build's install steps
    literal_secret_values: frozenset[str] = field(default=frozenset(), repr=False)
    skip_names: frozenset[str] = SKIP_NAMES
    skip_suffixes: tuple[str, ...] = SKIP_SUFFIXES

    def notes(self) -> list[str]:
        data = Path(self.data_dir).name if self.data_dir else "data"
        return [f"{data}/{name} is a credential file: used for nothing in the image and left out of it"
                for name in self.data_excluded]


def plan_context_sources(loaded: LoadedConfig, requirements: Requirements, docker_server: DockerServerPlan | None,
                         package_dirs: tuple[str, ...], runtime_pip_packages: tuple[str, ...],
                         ca_bundle: str | None, dev: bool = False) -> ContextSources:
    config, root = loaded.config, loaded.truss_dir.resolve()
    data = root / config.data_dir
    model = root / config.model_module_dir
    uv_project = None
    if requirements.kind == "uv_lock":
        lock = root / (requirements.source_file or "uv.lock")
        uv_project = (str(lock), str(lock.parent / "pyproject.toml"))
    dev_runtime = dev_runtime_dir() if dev else None
    if dev_runtime is not None and not dev_runtime.is_dir():
        raise PlanError(f"this pack has no reload control ({dev_runtime} is missing), so it cannot build a "
                        "dev image", hint="reinstall pack, or build without dev (`pack build`)")
    # docker_server images run the user's server: pack's own server layer is not installed there.
    server = PACK_SERVER_REQUIREMENTS.read_text(encoding="utf-8").splitlines() if docker_server is None else []
    return ContextSources(
        truss_dir=str(root),
        config_file=str(loaded.file.resolve()),
        model_dir=str(model) if model.is_dir() and docker_server is None else None,
        data_dir=str(data) if data.is_dir() else None,
        data_excluded=tuple(n for n in LEGACY_CREDENTIAL_FILES if (data / n).exists()),
        package_dirs=package_dirs,
        uv_project=uv_project,
        ca_bundle=os.path.abspath(ca_bundle) if ca_bundle else None,
        server_requirements=tuple(server) + runtime_pip_packages,
        config_document=json.dumps(loaded.resolved(), indent=2) + "\n",
        literal_secret_values=loaded.literal_secret_values,
        dev_runtime=str(dev_runtime) if dev_runtime is not None else None,
        uv_binary=installer_uv(),
    )
