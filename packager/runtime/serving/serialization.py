"""Request and response bodies: JSON (numpy- and pydantic-aware) and msgpack (Truss's binary
format: msgpack with msgpack-numpy arrays and Truss's date/time/decimal/uuid extensions).

numpy and pydantic are never imported here: values are recognised by their methods, and numpy
is imported only to decode an array a client actually sent (a model that receives arrays has
numpy installed). msgpack comes from server-requirements.txt; without it, binary requests get a
415 that says so.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol, cast

from . import pydantic_types
from .http_errors import CLIENT, HttpError

MSGPACK_MISSING = (
    "binary (msgpack) requests need the `msgpack` package, which is not installed in this image; "
    "add `msgpack` to requirements, or send JSON with Content-Type: application/json")


# The encoders' hooks get whatever the model returned: Any, because numpy values are recognised
# by their attributes (numpy is never imported to encode).

# --- JSON ---------------------------------------------------------------------------------------
def _json_default(obj: Any) -> object:
    if pydantic_types.is_model_instance(obj):
        return pydantic_types.dump_jsonable(obj)
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy arrays and scalars
        return obj.tolist()
    if hasattr(obj, "item") and hasattr(obj, "dtype"):
        return obj.item()
    if isinstance(obj, (datetime, date, time)):
        return obj.isoformat()
    if isinstance(obj, (Decimal, uuid.UUID)):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# What json.dumps writes as it is: no pydantic model to look for (that walks the class's MRO).
_JSON_TYPES = frozenset({dict, list, str, int, float, bool, type(None)})


def to_json(value: object) -> bytes:
    if type(value) not in _JSON_TYPES and pydantic_types.is_model_instance(value):
        return pydantic_types.dump_json(value)
    return json.dumps(value, default=_json_default).encode()


def parse_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError as exc:  # JSONDecodeError and undecodable bytes alike
        raise HttpError(400, f"Invalid JSON payload: {exc}", CLIENT) from None
    except RecursionError:  # a client's input, not a server fault: `[[[[...` a hundred thousand deep
        raise HttpError(400, "Invalid JSON payload: nested too deeply", CLIENT) from None


# --- msgpack ------------------------------------------------------------------------------------
class _Msgpack(Protocol):
    """The msgpack module as far as the runtime calls it (msgpack ships no type information)."""

    def packb(self, o: object, *, default: Callable[[Any], object], use_bin_type: bool) -> bytes: ...

    def unpackb(self, packed: bytes, *, object_hook: Callable[[dict[Any, Any]], object], raw: bool,
                strict_map_key: bool) -> object: ...


def _msgpack() -> _Msgpack:
    try:
        module = importlib.import_module("msgpack")
    except ImportError:
        raise HttpError(415, MSGPACK_MISSING, CLIENT) from None
    return cast(_Msgpack, module)


def _encode_ext(obj: Any) -> object:
    """`default` hook: Truss's extensions first, then the msgpack-numpy array format."""
    if isinstance(obj, datetime):
        text = obj.isoformat()
        return {b"__dt_datetime_iso__": True, b"data": text[:-6] + "Z" if text.endswith("+00:00") else text}
    if isinstance(obj, date):
        return {b"__dt_date_iso__": True, b"data": obj.isoformat()}
    if isinstance(obj, time):
        return {b"__dt_time_iso__": True, b"data": obj.isoformat()}
    if isinstance(obj, timedelta):
        return {b"__dt_timedelta__": True, b"data": (obj.days, obj.seconds, obj.microseconds)}
    if isinstance(obj, Decimal):
        return {b"__decimal__": True, b"data": str(obj)}
    if isinstance(obj, uuid.UUID):
        return {b"__uuid__": True, b"data": str(obj)}
    if pydantic_types.is_model_instance(obj):
        return pydantic_types.dump_python(obj)
    if hasattr(obj, "dtype") and hasattr(obj, "shape") and hasattr(obj, "tobytes"):
        dtype = obj.dtype
        if hasattr(obj, "ndim") and type(obj).__name__ == "ndarray":
            kind = b"V" if dtype.kind == "V" else b""
            descr = dtype.descr if dtype.kind == "V" else dtype.str
            data = obj.tobytes() if obj.flags["C_CONTIGUOUS"] else obj.copy(order="C").tobytes()
            return {b"nd": True, b"type": descr, b"kind": kind, b"shape": obj.shape, b"data": data}
        return {b"nd": False, b"type": dtype.str, b"data": obj.tobytes()}  # numpy scalar
    if isinstance(obj, complex):
        return {b"complex": True, b"data": repr(obj)}
    raise TypeError(f"can't serialize {type(obj).__name__} as msgpack")


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _decode_ext(obj: dict[Any, Any]) -> object:
    """`object_hook`: the inverse of _encode_ext (keys arrive as bytes or str)."""
    def get(key: str) -> Any:  # a decoded msgpack value: its shape is checked where it is used
        return obj.get(key.encode(), obj.get(key))

    try:
        if get("__dt_datetime_iso__"):
            text = _text(get("data"))
            return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        if get("__dt_date_iso__"):
            return date.fromisoformat(_text(get("data")))
        if get("__dt_time_iso__"):
            return time.fromisoformat(_text(get("data")))
        if get("__dt_timedelta__"):
            days, seconds, micros = get("data")
            return timedelta(days=days, seconds=seconds, microseconds=micros)
        if get("__decimal__"):
            return Decimal(_text(get("data")))
        if get("__uuid__"):
            return uuid.UUID(_text(get("data")))
        if get("nd") is not None and get("type") is not None and get("data") is not None:
            return _decode_numpy(get)
        if get("complex"):
            return complex(_text(get("data")))
    except (KeyError, TypeError, ValueError):
        pass
    return obj


def _decode_numpy(get: Callable[[str], Any]) -> object:
    import numpy as np  # only reached when a client sent an array

    descr = get("type")
    if isinstance(descr, (list, tuple)):
        descr = [tuple(_text(part) for part in field) for field in descr]
    else:
        descr = _text(descr)
    dtype = np.dtype(descr)
    if get("nd") is True:
        return np.ndarray(buffer=get("data"), dtype=dtype, shape=tuple(get("shape"))).copy()
    return np.frombuffer(get("data"), dtype=dtype)[0]


def to_msgpack(value: object) -> bytes:
    msgpack = _msgpack()
    if pydantic_types.is_model_instance(value):
        value = pydantic_types.dump_python(value)
    return msgpack.packb(value, default=_encode_ext, use_bin_type=True)


def parse_msgpack(body: bytes) -> object:
    msgpack = _msgpack()
    try:
        return msgpack.unpackb(body, object_hook=_decode_ext, raw=False, strict_map_key=False)
    except Exception as exc:  # noqa: BLE001 - msgpack raises several unrelated types
        raise HttpError(400, f"Invalid msgpack payload: {type(exc).__name__}: {exc}", CLIENT) from None
