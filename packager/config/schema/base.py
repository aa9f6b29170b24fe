"""Shared pieces of the config schema: the strict base model and rule violations.

Every section forbids unknown keys (Truss only checks them at push; pack checks at load), and
rules raise Violation so the loader can point at the exact field a rule is about, even when the
rule lives on a parent section (e.g. the mixed use_volume rule on the model_cache list).
"""

from __future__ import annotations

from typing import Any

import pydantic


class ConfigModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", protected_namespaces=())


class Violation(ValueError):
    """A rule broken by a config value.

    `at` is a path relative to the model the validator belongs to (e.g. (1, "volume_folder") on the
    model_cache list), so the error lands on the offending key, not on its parent.
    """

    def __init__(self, message: str, hint: str | None = None, at: tuple[Any, ...] = ()):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.at = at


class Violations(ValueError):
    """Several independent rule violations found by one validator; all are reported."""

    def __init__(self, items: list[Violation]):
        super().__init__("; ".join(v.message for v in items))
        self.items = items


def raise_all(found: list[Violation]) -> None:
    if len(found) == 1:
        raise found[0]
    if found:
        raise Violations(found)
