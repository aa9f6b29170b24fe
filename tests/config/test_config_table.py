"""Every case of the config table: exact field path, line and message of each finding."""

from __future__ import annotations

from typing import Any

import pytest

from packager.config import load_config
from packager.errors import ConfigError

from .cases import CASES, Case


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _findings(problems) -> list[tuple[str, int | None, str]]:
    return [(p.path, p.line, p.message) for p in problems]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_config_case(case: Case, truss_for) -> None:
    root = truss_for(case)
    if case.valid:
        loaded = load_config(root, allow_unknown_keys=case.allow_unknown)
        assert _findings(loaded.warnings) == case.warnings
        resolved = loaded.resolved()
        for dotted, expected in case.resolved.items():
            assert _lookup(resolved, dotted) == expected, dotted
        return
    with pytest.raises(ConfigError) as info:
        load_config(root, allow_unknown_keys=case.allow_unknown)
    assert sorted(_findings(info.value.problems)) == sorted(case.errors)
    for problem in info.value.problems:
        assert problem.file == str(root / "config.yaml")
        assert problem.hint, f"{problem.path} has no fix hint"
        assert problem.column is not None


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert sum(1 for c in CASES if c.valid) >= 20
    assert sum(1 for c in CASES if not c.valid) >= 40
