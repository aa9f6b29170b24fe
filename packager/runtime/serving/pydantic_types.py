"""Pydantic support without importing pydantic: the runtime never depends on it, but a model that
annotates predict with pydantic models gets them validated, dumped and published as a schema.

Everything here is duck-typed on the classes the user's module brings (pydantic v2, with the v1
method names as a fallback), so whatever pydantic version the user installed is the one used: a
method is called only where hasattr() found it, and what it returns is typed where pydantic's
documentation says what it is (str from the JSON dumps, a dict from the schema).
"""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typing.TypeGuard is Python 3.10+; only annotations name it
    from typing import TypeGuard


def is_model_class(obj: object) -> TypeGuard[type]:
    return isinstance(obj, type) and any(
        c.__name__ == "BaseModel" and c.__module__.split(".")[0] == "pydantic"
        for c in obj.__mro__)


def is_model_instance(obj: object) -> bool:
    return is_model_class(type(obj))


def is_validation_error(exc: BaseException) -> bool:
    return any(c.__name__ == "ValidationError" and c.__module__.split(".")[0] in ("pydantic", "pydantic_core")
               for c in type(exc).__mro__)


def _not_a_model(obj: object) -> TypeError:
    return TypeError(f"{obj!r} has neither pydantic v2's nor v1's methods")


def validate_json(model_class: type, raw: bytes) -> object:
    if hasattr(model_class, "model_validate_json"):
        return model_class.model_validate_json(raw)
    if hasattr(model_class, "parse_raw"):
        return model_class.parse_raw(raw)
    raise _not_a_model(model_class)


def validate_python(model_class: type, obj: object) -> object:
    if hasattr(model_class, "model_validate"):
        return model_class.model_validate(obj)
    if hasattr(model_class, "parse_obj"):
        return model_class.parse_obj(obj)
    raise _not_a_model(model_class)


def dump_json(instance: object) -> bytes:
    text: str
    if hasattr(instance, "model_dump_json"):
        text = instance.model_dump_json()
    elif hasattr(instance, "json"):
        text = instance.json()
    else:
        raise _not_a_model(instance)
    return text.encode()


def dump_python(instance: object) -> object:
    if hasattr(instance, "model_dump"):
        return instance.model_dump(mode="python")
    if hasattr(instance, "dict"):
        return instance.dict()
    raise _not_a_model(instance)


def dump_jsonable(instance: object) -> object:
    """A JSON-compatible structure (for a model nested inside a plain result)."""
    if hasattr(instance, "model_dump"):
        return instance.model_dump(mode="json")
    if hasattr(instance, "json"):
        return json.loads(instance.json())
    raise _not_a_model(instance)


def json_schema(model_class: type) -> dict[str, Any]:
    schema: dict[str, Any]
    if hasattr(model_class, "model_json_schema"):
        schema = model_class.model_json_schema()
    elif hasattr(model_class, "schema"):
        schema = model_class.schema()
    else:
        raise _not_a_model(model_class)
    return schema


def _location(loc: tuple[object, ...]) -> str:
    parts = []
    for i, x in enumerate(loc):
        parts.append(f"[{x}]" if isinstance(x, int) else (("." if i else "") + str(x)))
    return "".join(parts)


def format_validation_error(exc: BaseException) -> str:
    """Truss's wording: 'Input Parsing Error:' then one indented line per failing field."""
    fallback = f"Input Parsing Error, {exc}"
    if not hasattr(exc, "errors"):
        return fallback
    try:
        errors = exc.errors()
        parts = ["Input Parsing Error:" if len(errors) == 1 else "Input Parsing Errors:"]
        for error in errors:
            parts.append(textwrap.indent(f"`{_location(tuple(error['loc']))}`: {error['msg']}.", "  "))
        return "\n".join(parts)
    except Exception:  # noqa: BLE001 - an unexpected error shape still gets a message
        return fallback
