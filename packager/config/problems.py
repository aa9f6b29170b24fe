"""Turn pydantic validation errors into positioned, user-facing Problems.

Each problem names the field path (`model_cache[1].volume_folder`), says what is wrong and how to
fix it; unknown keys get a did-you-mean from the fields valid at that spot.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator
from typing import Any

import pydantic
from pydantic_core import ErrorDetails

from ..errors import Problem
from .schema import TrussConfig, Violation, Violations
from .yaml_source import Path, YamlDocument

_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def format_path(path: Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _model_at(path: Path) -> type[pydantic.BaseModel] | None:
    """The pydantic model class that validates the mapping found at `path`."""
    current: Any = TrussConfig
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
            info = current.model_fields.get(part) if isinstance(part, str) else None
            if info is None:
                return None
            current = info.annotation
        elif typing.get_origin(current) in (list, tuple) and isinstance(part, int):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
        return current
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Optional[...] and Annotated[...] so the walk sees the real container or model."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, pydantic.BaseModel)]
            if len(args) == 1:
                annotation = args[0]
            elif models:
                return models[0]  # discriminated unions (transport): any member lists `kind`
            else:
                return annotation
        else:
            return annotation


def allowed_keys(path: Path) -> list[str]:
    model = _model_at(path)
    if model is None:
        return []
    keys = list(model.model_fields)
    if model.__name__ == "Resources":
        keys.append("use_gpu")
    if model.__name__ == "Runtime":
        keys.append("num_workers")
    return keys


def unknown_key_problem(file: str, doc: YamlDocument, path: Path, severity: str) -> Problem:
    key = str(path[-1])
    parent = path[:-1]
    choices = allowed_keys(parent)
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    where = f"in {format_path(parent)}" if parent else "at the top level"
    message = f"unknown key `{key}` {where}"
    if close:
        hint = f"did you mean `{close[0]}`?"
    elif choices:
        hint = f"valid keys here: {', '.join(choices)}"
    else:
        hint = "remove it"
    if severity == "error":
        hint += " (if this key is for a newer Truss version, pass --allow-unknown-keys)"
    mark = doc.position(path, prefer_key=True)
    return Problem(
        file, format_path(path), mark.line if mark else None, mark.column if mark else None,
        message, hint, severity,
    )


def _violations(err: ErrorDetails) -> Iterator[Violation]:
    exc = (err.get("ctx") or {}).get("error")
    if isinstance(exc, Violations):
        yield from exc.items
    elif isinstance(exc, Violation):
        yield exc


def _type_hint(err: ErrorDetails, path: Path) -> tuple[str, str]:
    etype = err["type"]
    got = err.get("input")
    field_name = format_path(path) or "the file"
    if etype == "missing":
        key = str(path[-1]) if path else "?"
        return f"required key `{key}` is missing", f"add `{key}: …` here"
    if etype in _TYPE_WORDS:
        want = _TYPE_WORDS[etype]
        shown = "null (empty value)" if got is None else f"{type(got).__name__} `{got!r}`"
        hint = f"make {field_name} {want}"
        if etype == "string_type" and isinstance(got, (int, float, bool)):
            hint = f'quote it: {path[-1] if path else field_name}: "{got}"'
        return f"expected {want}, got {shown}", hint
    if etype in ("enum", "literal_error"):
        expected = (err.get("ctx") or {}).get("expected", "")
        return f"`{got}` is not allowed here", f"use one of {expected}"
    if etype == "union_tag_invalid":
        expected = (err.get("ctx") or {}).get("expected_tags", "")
        return f"unknown kind `{(err.get('ctx') or {}).get('tag')}`", f"use one of {expected}"
    if etype == "union_tag_not_found":
        return "`kind` is missing", "add kind: http (or websocket, grpc)"
    if etype in ("string_too_short", "too_short"):
        return "must not be empty", f"give {field_name} a value, or remove the key"
    if etype in ("greater_than_equal", "greater_than"):
        return err["msg"][0].lower() + err["msg"][1:], f"raise {field_name}"
    return err["msg"], f"check {field_name}"


def problems_from_validation(
    file: str, doc: YamlDocument, error: pydantic.ValidationError, data: Any
) -> tuple[list[Problem], list[Path]]:
    """All problems of one validation run, plus the paths of unknown keys found."""
    problems: list[Problem] = []
    unknown: list[Path] = []
    for err in error.errors(include_url=False):
        loc = _clean_loc(err["loc"])
        if err["type"] == "extra_forbidden":
            unknown.append(loc)
            continue
        found = list(_violations(err))
        if found:
            for v in found:
                path = loc + tuple(v.at)
                problems.append(_at(file, doc, path, v.message, v.hint))
            continue
        message, hint = _type_hint(err, loc)
        problems.append(_at(file, doc, loc, message, hint))
    return problems, unknown


def _clean_loc(loc: tuple[int | str, ...]) -> Path:
    # Discriminated unions add the tag ("http") to the loc; drop it so paths stay YAML paths.
    cleaned: list[Any] = []
    for part in loc:
        if isinstance(part, str) and part in ("http", "websocket", "grpc") and cleaned and cleaned[-1] == "transport":
            continue
        cleaned.append(part)
    return tuple(cleaned)


def _at(file: str, doc: YamlDocument, path: Path, message: str, hint: str | None,
        severity: str = "error") -> Problem:
    mark = doc.position(path, prefer_key=False)
    return Problem(
        file, format_path(path), mark.line if mark else None, mark.column if mark else None,
        message, hint, severity,
    )


def problem_at(file: str, doc: YamlDocument, path: Path, message: str, hint: str | None = None,
               severity: str = "error", prefer_key: bool = True) -> Problem:
    mark = doc.position(path, prefer_key=prefer_key)
    return Problem(
        file, format_path(path), mark.line if mark else None, mark.column if mark else None,
        message, hint, severity,
    )
