from __future__ import annotations

from pathlib import Path

import pytest

from .cases import Case


def write_truss(root: Path, case: Case) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(case.yaml, encoding="utf-8")
    if case.with_model:
        (root / "model").mkdir(exist_ok=True)
        (root / "model" / "model.py").write_text("class Model:\n    def predict(self, x):\n        return x\n")
    for rel, text in case.files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def truss_for(tmp_path: Path):
    return lambda case: write_truss(tmp_path / "truss", case)
