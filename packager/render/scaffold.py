"""`pack init`: write a new truss that passes `pack check`, all or nothing."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from ..errors import PackError
from ..templating import render

_FILES = {"config.yaml": "init/config.yaml.j2", "model/model.py": "init/model/model.py.j2"}


def init_truss(target: Path, model_name: str | None = None) -> list[Path]:
    """Create a truss at `target`; refuse to touch a non-empty directory."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PackError(f"{target} already exists and is not empty",
                        "choose a new directory, or remove the existing one")
    name = model_name or re.sub(r"[^A-Za-z0-9_.-]+", "-", target.resolve().name).strip("-") or "my-model"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename into place so nobody sees a half-written truss.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for rel, template in _FILES.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(template, model_name=name), encoding="utf-8")
        (staging / "data").mkdir()
        (staging / "packages").mkdir()
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [target / rel for rel in _FILES]
