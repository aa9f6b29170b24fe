"""Pydantic support without importing pydantic: the runtime never depends on it, but a model that
annotates predict with pydantic models gets them validated, dumped and published as a schema.

Everything here is duck-typed on the classes the user's module brings (pydantic v2, with the v1
method names as a fallback), so whatever pydantic version the user installed is the one used.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any


def is_model_class(obj: Any) -> bool:
    return isinstance(obj, type) and any(
        c.__name__ == "BaseModel" and c.__module__.split(".")[0] == "pydantic"
        for c in obj.__mro__)


def is_model_instance(obj: Any) -> bool:
    return is_model_class(type(obj))


def is_validation_error(exc: BaseException) -> bool:
    return any(c.__name__ == "ValidationError" and c.__module__.split(".")[0] in ("pydantic", "pydantic_core")
               for c in type(exc).__mro__)


def validate_json(model_class: type, raw: bytes) -> Any:
    if hasattr(model_class, "model_validate_json"):
        return model_class.model_validate_json(raw)
    return model_class.parse_raw(raw)


def validate_python(model_class: type, obj: Any) -> Any:
    if hasattr(model_class, "model_validate"):
        return model_class.model_validate(obj)
    return model_class.parse_obj(obj)


def dump_json(instance: Any) -> bytes:
    if hasattr(instance, "model_dump_json"):
        return instance.model_dump_json().encode()
    return instance.json().encode()


def dump_python(instance: Any) -> Any:
    if hasattr(instance, "model_dump"):
        return instance.model_dump(mode="python")
    return instance.dict()


def dump_jsonable(instance: Any) -> Any:
    """A JSON-compatible structure (for a model nested inside a plain result)."""
    if hasattr(instance, "model_dump"):
        return instance.model_dump(mode="json")
    return json.loads(instance.json())


def json_schema(model_class: type) -> dict:
    if hasattr(model_class, "model_json_schema"):
        return model_class.model_json_schema()
    return model_class.schema()


def _location(loc: tuple) -> str:
    parts = []
    for i, x in enumerate(loc):
        parts.append(f"[{x}]" if isinstance(x, int) else (("." if i else "") + str(x)))
    return "".join(parts)


def format_validation_error(exc: BaseException) -> str:
    """Truss's wording: 'Input Parsing Error:' then one indented line per failing field."""
    try:
        errors = exc.errors()  # type: ignore[attr-defined]
        parts = ["Input Parsing Error:" if len(errors) == 1 else "Input Parsing Errors:"]
        for error in errors:
            parts.append(textwrap.indent(f"`{_location(tuple(error['loc']))}`: {error['msg']}.", "  "))
        return "\n".join(parts)
    except Exception:  # noqa: BLE001 - an unexpected error shape still gets a message
        return f"Input Parsing Error, {exc}"
