"""Manifests -> YAML files: one multi-document file per workload, in apply order, written into a
sibling staging directory and swapped into place, so a reader sees the old set or the new one,
never a mix. Byte-identical for equal manifests (no timestamps, keys in the order built)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import DeployError
from .targets import RenderedWorkload


@dataclass(frozen=True)
class WrittenManifests:
    path: Path
    files: tuple[Path, ...]  # relative to path, in apply order


class _Dumper(yaml.SafeDumper):
    """Block style throughout; multi-line strings (a chain's JSON) as literal blocks; a mapping
    used twice (the pod's labels are the workload's) written out twice, not as an alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def to_yaml(resources: Sequence[dict[str, Any]]) -> str:
    return "".join("---\n" + yaml.dump(r, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096)
                   for r in resources)


def file_texts(workloads: Sequence[RenderedWorkload]) -> dict[str, str]:
    """File name -> YAML, in apply order (dict order)."""
    texts: dict[str, str] = {}
    for number, workload in enumerate(workloads):
        texts[f"{number:02d}-{workload.name}.yaml"] = to_yaml(workload.resources)
    return texts


def check_no_values(texts: dict[str, str], values: frozenset[str]) -> None:
    """A secret value written in config.yaml never reaches a manifest."""
    for name, text in texts.items():
        if any(v and v in text for v in values):
            raise DeployError(f"a secret value from config.yaml would appear in {name}",
                              hint="remove the value from config.yaml's secrets (keep `name: null`) and store "
                                   "it in the Kubernetes Secret")


def write_manifests(workloads: Sequence[RenderedWorkload], out: Path,
                    secret_values: frozenset[str] = frozenset()) -> WrittenManifests:
    """Write the files into `out`, replacing what was there as a whole."""
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise DeployError(f"{out} exists and is not a directory", hint="choose another output path")
    texts = file_texts(workloads)
    check_no_values(texts, secret_values)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.deploy-", dir=out.parent))
    retired = out.parent / f".{out.name}.retired-{os.getpid()}"
    try:
        for name, text in texts.items():
            (staging / name).write_text(text, encoding="utf-8")
        staging.chmod(0o755)
        if out.exists():
            out.rename(retired)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired.exists() and not out.exists():
            retired.rename(out)
        raise
    shutil.rmtree(retired, ignore_errors=True)
    return WrittenManifests(out, tuple(Path(n) for n in texts))


__all__ = ["WrittenManifests", "check_no_values", "file_texts", "to_yaml", "write_manifests"]
