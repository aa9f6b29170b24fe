"""The labels that tie what pack creates in the engine to a truss: its images (given at build,
in the image config only, so the layer cache is shared with every other build), its containers
and its weight-cache volumes (given at run). `pack logs`, `stop` and `cleanup` find them by these."""

from __future__ import annotations

from pathlib import Path

from ..constants import LABEL_MODEL_NAME, LABEL_TRUSS
from ..plan.model import BuildPlan


def truss_key(config_file: str | Path) -> str:
    """A truss as the labels name it: its config file (another one with --config), absolute."""
    return str(Path(config_file).resolve())


def truss_labels(plan: BuildPlan) -> dict[str, str]:
    return {LABEL_TRUSS: truss_key(plan.sources.config_file), LABEL_MODEL_NAME: plan.model_name}


def truss_selector(config_file: str | Path) -> dict[str, str]:
    """The labels every image, container and volume of one truss carries."""
    return {LABEL_TRUSS: truss_key(config_file)}
